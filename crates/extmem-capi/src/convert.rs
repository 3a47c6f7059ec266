//! Checked reads of what the caller passes (pointers, sizes, strings, descriptors) and the
//! conversions between the ABI's structs and the library's types.

use crate::status::{CResult, Failure};
use crate::types::*;
use ash::vk;
use extmem_rs::pool::{BlockDesc, PoolHandle, PooledDesc};
use extmem_rs::{BufferDesc, Descriptor, HandleType, ImageDesc, ResourceDesc};
use std::ffi::{c_char, c_int, CStr};
use std::os::fd::{FromRawFd, OwnedFd};

/// `ptr` as a reference to an input struct that starts with `struct_size`, checked: not NULL,
/// and at least as large as this library's struct.
///
/// # Safety
/// A non-null `ptr` points to `struct_size` readable bytes.
pub(crate) unsafe fn input<'a, T>(ptr: *const T, name: &str) -> CResult<&'a T> {
    if ptr.is_null() {
        return Err(Failure::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-null; the caller's struct starts with its uint32_t struct_size.
    let size = unsafe { (ptr as *const u32).read_unaligned() } as usize;
    check_size::<T>(size, name)?;
    // SAFETY: non-null and at least size_of::<T>() bytes, as the caller says.
    Ok(unsafe { &*ptr })
}

/// `ptr` as an output struct that starts with `struct_size`, checked as [`input`].
///
/// # Safety
/// A non-null `ptr` points to `struct_size` writable bytes.
pub(crate) unsafe fn output<'a, T>(ptr: *mut T, name: &str) -> CResult<&'a mut T> {
    // SAFETY: as for input.
    unsafe { input(ptr, name) }?;
    // SAFETY: checked by input; the caller gives it for writing.
    Ok(unsafe { &mut *ptr })
}

fn check_size<T>(size: usize, name: &str) -> CResult<()> {
    if size < std::mem::size_of::<T>() {
        return Err(Failure::arg(format!(
            "{name}->struct_size is {size}, this library's struct has {} bytes: set it to sizeof the struct",
            std::mem::size_of::<T>()
        )));
    }
    Ok(())
}

/// `ptr` as a reference to a plain input struct (one without `struct_size`): not NULL.
///
/// # Safety
/// A non-null `ptr` points to a readable `T`.
pub(crate) unsafe fn plain<'a, T>(ptr: *const T, name: &str) -> CResult<&'a T> {
    if ptr.is_null() {
        return Err(Failure::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-null, readable as the caller says.
    Ok(unsafe { &*ptr })
}

/// An out-parameter for a handle: not NULL; set to NULL now so a failure leaves it NULL.
///
/// # Safety
/// A non-null `out` points to a writable pointer.
pub(crate) unsafe fn out_handle<'a, H>(out: *mut *mut H, name: &str) -> CResult<&'a mut *mut H> {
    if out.is_null() {
        return Err(Failure::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-null, writable as the caller says.
    let out = unsafe { &mut *out };
    *out = std::ptr::null_mut();
    Ok(out)
}

/// A plain out-parameter (an `int`, a `uint64_t`...): not NULL.
///
/// # Safety
/// A non-null `out` points to a writable `T`.
pub(crate) unsafe fn out_value<'a, T>(out: *mut T, name: &str) -> CResult<&'a mut T> {
    if out.is_null() {
        return Err(Failure::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-null, writable as the caller says.
    Ok(unsafe { &mut *out })
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// A non-null `ptr` points to a NUL-terminated string.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, name: &str) -> CResult<&'a str> {
    if ptr.is_null() {
        return Err(Failure::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-null and NUL-terminated, as the caller says.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| Failure::arg(format!("{name} is not UTF-8")))
}

/// Takes ownership of descriptor `fd` (closed when the result is dropped), after checking it
/// is an open descriptor of this process: a negative or closed number is refused (and then
/// nothing is closed).
pub(crate) fn owned_fd(fd: c_int, name: &str) -> CResult<OwnedFd> {
    if fd < 0 {
        return Err(Failure::arg(format!("{name} is {fd}, not a file descriptor")));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Failure::arg(format!("{name} {fd} is not an open file descriptor")));
    }
    // SAFETY: an open descriptor the caller hands over (every function taking one says so).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Closes `fd` if it is an open descriptor: for functions that take a descriptor in every
/// case, when they fail before they own it.
pub(crate) fn close_given(fd: c_int) {
    drop(owned_fd(fd, "fd"));
}

/// `VK_TRUE` / `VK_FALSE` as a bool; any other value refused.
pub(crate) fn bool32(v: u32, name: &str) -> CResult<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Failure::arg(format!("{name} is {v}: use VK_TRUE (1) or VK_FALSE (0)"))),
    }
}

pub(crate) fn handle_type(bits: vk::ExternalMemoryHandleTypeFlags, name: &str) -> CResult<HandleType> {
    HandleType::from_vk(bits).ok_or_else(|| {
        Failure::arg(format!(
            "{name} is {:#x}: use one of VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT (0x1), DMA_BUF_BIT_EXT (0x200), \
             HOST_ALLOCATION_BIT_EXT (0x80)",
            bits.as_raw()
        ))
    })
}

pub(crate) fn to_resource(r: &extmem_resource_desc, name: &str) -> CResult<ResourceDesc> {
    match r.kind {
        EXTMEM_RESOURCE_IMAGE => {
            let i = &r.image;
            Ok(ResourceDesc::Image(ImageDesc {
                format: i.format,
                extent: vk::Extent3D { width: i.width, height: i.height, depth: i.depth },
                mip_levels: i.mip_levels,
                array_layers: i.array_layers,
                tiling: i.tiling,
                usage: i.usage,
            }))
        }
        EXTMEM_RESOURCE_BUFFER => Ok(ResourceDesc::Buffer(BufferDesc { size: r.buffer.size, usage: r.buffer.usage })),
        k => Err(Failure::arg(format!(
            "{name}.kind is {k}: use EXTMEM_RESOURCE_IMAGE ({EXTMEM_RESOURCE_IMAGE}) or EXTMEM_RESOURCE_BUFFER \
             ({EXTMEM_RESOURCE_BUFFER})"
        ))),
    }
}

pub(crate) fn from_resource(r: &ResourceDesc) -> extmem_resource_desc {
    let mut out = extmem_resource_desc::default();
    match r {
        ResourceDesc::Image(i) => {
            out.kind = EXTMEM_RESOURCE_IMAGE;
            out.image = extmem_image_desc {
                format: i.format,
                width: i.extent.width,
                height: i.extent.height,
                depth: i.extent.depth,
                mip_levels: i.mip_levels,
                array_layers: i.array_layers,
                tiling: i.tiling,
                usage: i.usage,
            };
        }
        ResourceDesc::Buffer(b) => {
            out.kind = EXTMEM_RESOURCE_BUFFER;
            out.buffer = extmem_buffer_desc { size: b.size, usage: b.usage };
        }
        // The library may learn new kinds; this ABI version describes none of them.
        _ => {}
    }
    out
}

/// The library's descriptor from the caller's, field by field (the rules are checked where
/// it is used: see `import.rs`).
pub(crate) fn to_descriptor(d: &extmem_descriptor, name: &str) -> CResult<Descriptor> {
    Ok(Descriptor {
        resource: to_resource(&d.resource, &format!("{name}->resource"))?,
        handle_type: handle_type(d.handle_type, &format!("{name}->handle_type"))?,
        allocation_size: d.allocation_size,
        memory_type_index: d.memory_type_index,
        memory_type_bits: d.memory_type_bits,
        dedicated: bool32(d.dedicated, &format!("{name}->dedicated"))?,
        offset: d.offset,
        layout: d.layout,
        device_uuid: d.device_uuid,
        driver_uuid: d.driver_uuid,
        row_pitch: d.row_pitch,
    })
}

pub(crate) fn from_descriptor(d: &Descriptor) -> extmem_descriptor {
    extmem_descriptor {
        struct_size: std::mem::size_of::<extmem_descriptor>() as u32,
        resource: from_resource(&d.resource),
        handle_type: d.handle_type.to_vk(),
        allocation_size: d.allocation_size,
        memory_type_index: d.memory_type_index,
        memory_type_bits: d.memory_type_bits,
        dedicated: d.dedicated as u32,
        offset: d.offset,
        layout: d.layout,
        device_uuid: d.device_uuid,
        driver_uuid: d.driver_uuid,
        row_pitch: d.row_pitch,
    }
}

pub(crate) fn to_block(b: &extmem_block_desc, name: &str) -> CResult<BlockDesc> {
    Ok(BlockDesc {
        block: b.block,
        size: b.size,
        handle_type: handle_type(b.handle_type, &format!("{name}.handle_type"))?,
        memory_type_index: b.memory_type_index,
        device_uuid: b.device_uuid,
        driver_uuid: b.driver_uuid,
    })
}

pub(crate) fn from_block(b: &BlockDesc) -> extmem_block_desc {
    extmem_block_desc {
        block: b.block,
        size: b.size,
        handle_type: b.handle_type.to_vk(),
        memory_type_index: b.memory_type_index,
        device_uuid: b.device_uuid,
        driver_uuid: b.driver_uuid,
    }
}

pub(crate) fn to_handle(h: &extmem_pool_handle) -> PoolHandle {
    PoolHandle { block: h.block, offset: h.offset, size: h.size, generation: h.generation }
}

pub(crate) fn from_handle(h: &PoolHandle) -> extmem_pool_handle {
    extmem_pool_handle { block: h.block, offset: h.offset, size: h.size, generation: h.generation }
}

pub(crate) fn to_pooled(p: &extmem_pooled_desc, name: &str) -> CResult<PooledDesc> {
    Ok(PooledDesc {
        handle: to_handle(&p.handle),
        resource: to_resource(&p.resource, &format!("{name}.resource"))?,
        layout: p.layout,
        row_pitch: p.row_pitch,
    })
}

pub(crate) fn from_pooled(p: &PooledDesc) -> extmem_pooled_desc {
    extmem_pooled_desc {
        handle: from_handle(&p.handle),
        resource: from_resource(&p.resource),
        layout: p.layout,
        row_pitch: p.row_pitch,
    }
}
