//! Exportable and imported images and buffers (`extmem_memory`): create, export, checked
//! import, reads and writes ordered by an `extmem_handoff`, and the queue-family barriers for
//! command buffers the application records itself.

use crate::convert::{self, input, out_handle, out_value, output};
use crate::handles::{self, handle};
use crate::handoff::{extmem_handoff, with_handoff};
use crate::status::{extmem_status, guard, guard_value, CResult, Failure};
use crate::types::*;
use crate::vk_types::*;
use ash::vk;
use extmem_rs::external::{RawMemory, RawResource};
use extmem_rs::sync::Holder;
use extmem_rs::{Dedicated, SharedMemory};
use std::ffi::{c_int, c_void};
use std::os::fd::IntoRawFd;

/// An image or buffer with its memory, exportable (made by extmem) or imported; it owns its
/// `VkImage` / `VkBuffer` and `VkDeviceMemory` and destroys them when the last reference goes.
/// Keeps its context alive. Thread-safe; reads and writes are ordered by extmem's own locks.
pub struct extmem_memory {
    _private: [u8; 0],
}
handle!(extmem_memory => MemoryObj);

/// The library's `SharedMemory`, which the handle registry shares between threads.
pub(crate) struct MemoryObj(SharedMemory);
// SAFETY: `SharedMemory` is not `Send` only because its cached staging buffer holds the raw
// pointer of its own host mapping; that buffer is owned by the `SharedMemory` and touched only
// under its mutex, so moving it to, or using it from, another thread is sound (every other
// field is a Vulkan handle, an `Arc<Context>` or a mutex).
unsafe impl Send for MemoryObj {}
// SAFETY: as above: shared access goes through `&self` methods that lock.
unsafe impl Sync for MemoryObj {}

impl std::ops::Deref for MemoryObj {
    type Target = SharedMemory;
    fn deref(&self) -> &SharedMemory {
        &self.0
    }
}

/// Registers memory made or imported by another module.
pub(crate) fn insert(memory: SharedMemory) -> *mut extmem_memory {
    handles::insert::<extmem_memory>(MemoryObj(memory))
}

/// Whether exported memory is a dedicated allocation.
pub type extmem_dedicated = u32;
/// Always (the default): CUDA maps dedicated allocations far faster.
pub const EXTMEM_DEDICATED_ALWAYS: extmem_dedicated = 0;
/// Only when the driver prefers or requires it.
pub const EXTMEM_DEDICATED_IF_PREFERRED: extmem_dedicated = 1;
/// Only when the driver requires it.
pub const EXTMEM_DEDICATED_NEVER: extmem_dedicated = 2;

/// What `extmem_memory_create` makes.
#[repr(C)]
pub struct extmem_memory_options {
    /// `sizeof(extmem_memory_options)`.
    pub struct_size: u32,
    /// The image or buffer.
    pub resource: extmem_resource_desc,
    /// How it will be shared (one `VK_EXTERNAL_MEMORY_HANDLE_TYPE_*_BIT`; 0: opaque fd).
    pub handle_type: VkExternalMemoryHandleTypeFlagBits,
    /// `EXTMEM_DEDICATED_*`.
    pub dedicated: extmem_dedicated,
}

/// Makes an exportable image or buffer, after checking the description against Vulkan's
/// rules and the device's limits (`EXTMEM_ERROR_INVALID_DESCRIPTION` naming the field) and
/// what the device can export (`EXTMEM_ERROR_UNSUPPORTED`).
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_create(
    ctx: *mut crate::context::extmem_context,
    options: *const extmem_memory_options,
    out: *mut *mut extmem_memory,
) -> extmem_status {
    guard("extmem_memory_create", || {
        // SAFETY: the caller's pointers.
        let (out, o) = unsafe { (out_handle(out, "out")?, input(options, "options")?) };
        let ctx = crate::context::get(ctx)?;
        let bits = if o.handle_type.is_empty() { vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD } else { o.handle_type };
        let h = convert::handle_type(bits, "options->handle_type")?;
        let dedicated = match o.dedicated {
            EXTMEM_DEDICATED_ALWAYS => Dedicated::Always,
            EXTMEM_DEDICATED_IF_PREFERRED => Dedicated::IfPreferred,
            EXTMEM_DEDICATED_NEVER => Dedicated::Never,
            d => return Err(Failure::arg(format!("options->dedicated is {d}: use an EXTMEM_DEDICATED_* value"))),
        };
        let memory = match convert::to_resource(&o.resource, "options->resource")? {
            extmem_rs::ResourceDesc::Image(i) => SharedMemory::new_image(&ctx, i, h, dedicated)?,
            extmem_rs::ResourceDesc::Buffer(b) => SharedMemory::new_buffer(&ctx, b, h, dedicated)?,
            _ => return Err(Failure::arg("options->resource: an unknown kind")),
        };
        *out = insert(memory);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Exports the memory: `*out_fd` is a new close-on-exec descriptor that the caller owns
/// (close it, or pass it to `extmem_channel_send`, which only borrows it), and
/// `*out_descriptor` what an importer needs. Each call makes a new descriptor.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_export(
    memory: *const extmem_memory,
    out_descriptor: *mut extmem_descriptor,
    out_fd: *mut c_int,
) -> extmem_status {
    guard("extmem_memory_export", || {
        // SAFETY: the caller's pointers.
        let (d, fd_out) = unsafe { (output(out_descriptor, "out_descriptor")?, out_value(out_fd, "out_fd")?) };
        *fd_out = -1;
        let m = handles::get(memory)?;
        let (desc, fd) = m.export()?;
        *d = convert::from_descriptor(&desc);
        *fd_out = fd.into_raw_fd();
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The descriptor of the memory (what `extmem_memory_export` gives, without a new fd).
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_get_descriptor(
    memory: *const extmem_memory,
    out: *mut extmem_descriptor,
) -> extmem_status {
    guard("extmem_memory_get_descriptor", || {
        // SAFETY: the caller's struct.
        let out = unsafe { output(out, "out") }?;
        *out = convert::from_descriptor(&handles::get(memory)?.descriptor());
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Imports memory another instance or process exported, and makes the image or buffer the
/// descriptor describes on it, with every check the library does before the driver sees the
/// fd (docs/src/protocol.md §3.3): the descriptor's rules, the device's limits, what kind of
/// file `fd` is, seals of host memory, UUIDs, memory type and size.
///
/// `fd` is taken in every case, the call's failure included (a negative `fd` is refused and
/// nothing is closed): on success Vulkan owns it, and on failure extmem closes it exactly once
/// (drivers differ on whether they close it after a failed import; extmem gives the driver a
/// duplicate and accounts for both).
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_import(
    ctx: *mut crate::context::extmem_context,
    descriptor: *const extmem_descriptor,
    fd: c_int,
    out: *mut *mut extmem_memory,
) -> extmem_status {
    let mut fd = Some(fd);
    let status = guard("extmem_memory_import", || {
        let owned = convert::owned_fd(fd.take().unwrap_or(-1), "fd")?;
        // SAFETY: the caller's pointers.
        let (out, d) = unsafe { (out_handle(out, "out")?, input(descriptor, "descriptor")?) };
        let ctx = crate::context::get(ctx)?;
        let desc = convert::to_descriptor(d, "descriptor")?;
        *out = insert(crate::import::memory(&ctx, &desc, owned)?);
        Ok(extmem_status::EXTMEM_OK)
    });
    // A panic before the descriptor was taken over leaves it for us to close.
    if let Some(fd) = fd {
        convert::close_given(fd);
    }
    status
}

/// The bytes `extmem_memory_read` gives and `extmem_memory_write` takes: the buffer's size,
/// or mip level 0 of every layer of the image, tightly packed.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_data_size(memory: *const extmem_memory, out: *mut u64) -> extmem_status {
    guard("extmem_memory_data_size", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_value(out, "out") }?;
        *out = handles::get(memory)?.data_len()?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Writes `size` bytes (exactly `extmem_memory_data_size`) through the GPU's copy engine,
/// then releases the memory to `VK_QUEUE_FAMILY_EXTERNAL` (images in `GENERAL`) and waits for
/// extmem's fence: the other side may then acquire it. `handoff`: NULL for host ordering.
/// On a borrowed context this submits under the application's queue lock (and fails
/// without one).
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_write(
    memory: *mut extmem_memory,
    data: *const c_void,
    size: usize,
    handoff: *const extmem_handoff,
) -> extmem_status {
    guard("extmem_memory_write", || {
        let m = handles::get(memory)?;
        if data.is_null() {
            return Err(Failure::arg("data is NULL"));
        }
        let len = m.data_len()?;
        if len != size as u64 {
            return Err(Failure::arg(format!("size is {size}, the memory holds {len} bytes")));
        }
        // SAFETY: the caller's `size` readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, size) };
        // SAFETY: the caller's struct, if any.
        unsafe { with_handoff(handoff, |h| Ok(m.write(bytes, h)?)) }?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Reads the contents (exactly `extmem_memory_data_size` bytes into `data`) through the
/// GPU's copy engine, acquiring the memory from the external queue family first and releasing
/// it back after. `handoff`: NULL for host ordering.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_read(
    memory: *mut extmem_memory,
    data: *mut c_void,
    size: usize,
    handoff: *const extmem_handoff,
) -> extmem_status {
    guard("extmem_memory_read", || {
        let m = handles::get(memory)?;
        if data.is_null() {
            return Err(Failure::arg("data is NULL"));
        }
        let len = m.data_len()?;
        if len != size as u64 {
            return Err(Failure::arg(format!("size is {size}, the memory holds {len} bytes")));
        }
        // SAFETY: the caller's struct, if any.
        let bytes = unsafe { with_handoff(handoff, |h| Ok(m.read(h)?)) }?;
        // SAFETY: the caller's `size` writable bytes; `bytes` has `len` == `size` of them.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, size) };
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The image, or `VK_NULL_HANDLE` for a buffer (or a bad handle, the error recorded). Owned
/// by the `extmem_memory`: do not destroy it.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_vk_image(memory: *const extmem_memory) -> VkImage {
    guard_value("extmem_memory_vk_image", vk::Image::null(), || Ok(handles::get(memory)?.image().unwrap_or_default()))
}

/// The buffer, or `VK_NULL_HANDLE` for an image (or a bad handle). Owned by the
/// `extmem_memory`.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_vk_buffer(memory: *const extmem_memory) -> VkBuffer {
    guard_value("extmem_memory_vk_buffer", vk::Buffer::null(), || {
        Ok(handles::get(memory)?.buffer().unwrap_or_default())
    })
}

/// The `VkDeviceMemory` (owned by the `extmem_memory`), or `VK_NULL_HANDLE` for a bad handle.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_vk_memory(memory: *const extmem_memory) -> VkDeviceMemory {
    guard_value("extmem_memory_vk_memory", vk::DeviceMemory::null(), || Ok(handles::get(memory)?.memory()))
}

fn raw(m: &SharedMemory) -> RawMemory {
    let d = m.descriptor();
    RawMemory {
        resource: match m.image() {
            Some(i) => RawResource::Image(i),
            None => RawResource::Buffer(m.buffer().unwrap_or_default()),
        },
        desc: d.resource,
        memory: m.memory(),
        allocation_size: d.allocation_size,
        memory_type_index: d.memory_type_index,
        dedicated: d.dedicated,
        offset: d.offset,
        handle_type: m.handle_type(),
    }
}

/// Records into the application's `cb` (on the context's queue family) the barrier that
/// takes the memory from the other side (`from_external` `VK_TRUE`: from
/// `VK_QUEUE_FAMILY_EXTERNAL`, images from `GENERAL`; `VK_FALSE`: fresh, contents undefined)
/// into `layout` for `access` at `stage`.
///
/// extmem's own transfers (`extmem_memory_read` / `_write`) do not see barriers the
/// application records: until the first of them, they take the memory as fresh (an image's
/// contents undefined), and after it as held by the other side. For an image, let extmem's
/// first transfer be a write, or keep to your own commands.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_record_acquire(
    memory: *const extmem_memory,
    cb: VkCommandBuffer,
    from_external: VkBool32,
    layout: VkImageLayout,
    access: VkAccessFlags,
    stage: VkPipelineStageFlags,
) -> extmem_status {
    guard("extmem_memory_record_acquire", || {
        let m = handles::get(memory)?;
        let holder = if convert::bool32(from_external, "from_external")? { Holder::External } else { Holder::Fresh };
        if cb == vk::CommandBuffer::null() {
            return Err(Failure::arg("cb is VK_NULL_HANDLE"));
        }
        raw(&m).record_acquire(m.context(), cb, holder, layout, access, stage);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Records into `cb` the barrier that releases the memory to `VK_QUEUE_FAMILY_EXTERNAL`
/// (images from `layout` into `GENERAL`), making the writes of `access` at `stage` available
/// to the other side.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_record_release(
    memory: *const extmem_memory,
    cb: VkCommandBuffer,
    layout: VkImageLayout,
    access: VkAccessFlags,
    stage: VkPipelineStageFlags,
) -> extmem_status {
    guard("extmem_memory_record_release", || {
        let m = handles::get(memory)?;
        if cb == vk::CommandBuffer::null() {
            return Err(Failure::arg("cb is VK_NULL_HANDLE"));
        }
        raw(&m).record_release(m.context(), cb, layout, access, stage);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Drops the application's reference; the image or buffer and its memory are destroyed
/// when nothing else holds them (make sure the GPU is done with them). NULL or a destroyed
/// handle is ignored, the error recorded.
#[no_mangle]
pub unsafe extern "C" fn extmem_memory_destroy(memory: *mut extmem_memory) {
    guard("extmem_memory_destroy", || {
        handles::remove(memory)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// Resolves a memory handle (for the other modules).
pub(crate) fn get(memory: *const extmem_memory) -> CResult<std::sync::Arc<MemoryObj>> {
    handles::get(memory)
}
