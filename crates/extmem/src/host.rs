//! Host memory as shared memory (`VK_EXT_external_memory_host`).
//!
//! The pages live in a memfd. The exporting process maps it and imports the mapping into its
//! device by pointer; it sends a duplicate of the memfd; the importing process maps the same
//! pages and imports them into its own device the same way. Unlike an opaque fd, this crosses
//! devices and drivers (lavapipe and an NVIDIA GPU see the same bytes), at the price of the GPU
//! reading host memory over the bus.

use crate::context::Context;
use crate::error::{Error, IoResultExt, Result, VkResultExt};
use crate::handle::HandleType;
use ash::vk;
use rustix::fs::SealFlags;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The seals on every memfd extmem shares: its size can no longer change, so the receiver's
/// mapping can never fault (SIGBUS) because the sender shrank the file after the size check.
pub const SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// A new memfd of `len` bytes (close-on-exec), sealed with [`SEALS`]: what every sender of host
/// memory uses (the receiving side refuses a memfd without the seals). Its bytes stay writable.
pub fn sealed_memfd(name: &str, len: u64) -> Result<OwnedFd> {
    use rustix::fs::MemfdFlags;
    let fd =
        rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).io(|| "memfd_create".into())?;
    rustix::fs::ftruncate(&fd, len).io(|| format!("growing the memfd to {len} bytes"))?;
    rustix::fs::fcntl_add_seals(&fd, SEALS).io(|| "sealing the memfd (F_SEAL_SHRINK | F_SEAL_GROW)".into())?;
    Ok(fd)
}

/// Refuses host memory another process sent unless it is a memfd sealed with [`SEALS`] that
/// holds at least `len` bytes (`len` > 0).
pub fn check_received(fd: &OwnedFd, len: u64) -> Result<()> {
    check_received_fd(fd.as_fd(), len)
}

/// [`check_received`] of a borrowed descriptor.
pub fn check_received_fd(fd: std::os::fd::BorrowedFd<'_>, len: u64) -> Result<()> {
    if len == 0 {
        return Err(Error::Import("the peer announced 0 bytes of host memory; nothing can be mapped".into()));
    }
    crate::gate::fdkind::check_kind(HandleType::HostAllocation, crate::gate::fdkind::classify(fd)?, None)?;
    let seals = rustix::fs::fcntl_get_seals(fd).io(|| "reading the memfd's seals".into())?;
    if !seals.contains(SEALS) {
        return Err(Error::Import(
            "the host memory's memfd is not sealed against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW): \
             the sender could shrink it under this mapping; senders use extmem::host::sealed_memfd"
                .into(),
        ));
    }
    let size = rustix::fs::fstat(fd).io(|| "fstat of the shared host memory".into())?.st_size;
    if (size as u64) < len {
        return Err(Error::Import(format!("the host memory file holds {size} bytes, the descriptor says {len}")));
    }
    Ok(())
}

/// A shared, read-write mapping of a memfd, unmapped on drop.
pub struct HostMapping {
    fd: OwnedFd,
    ptr: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; the pointer is only handed to Vulkan (which
// synchronises its own access) or read through `bytes`, whose caller orders it after the GPU.
unsafe impl Send for HostMapping {}
// SAFETY: as above; `&self` methods do not write.
unsafe impl Sync for HostMapping {}

impl HostMapping {
    /// A new memfd of `len` bytes (close-on-exec), mapped.
    pub fn create(len: usize) -> Result<HostMapping> {
        Self::map(sealed_memfd("extmem", len as u64)?, len)
    }

    /// Maps the first `len` bytes of a memfd another process sent. It must be sealed (see
    /// [`check_received`]) and hold at least `len` bytes.
    pub fn open(fd: OwnedFd, len: usize) -> Result<HostMapping> {
        check_received(&fd, len as u64)?;
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<HostMapping> {
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        // SAFETY: a fresh shared mapping of `len` bytes of the file, unmapped on drop.
        let ptr = unsafe {
            mmap(std::ptr::null_mut(), len.max(1), ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }
        .io(|| format!("mmap of {len} bytes of shared host memory"))?;
        Ok(HostMapping { fd, ptr, len })
    }

    /// The first byte.
    pub fn ptr(&self) -> *mut std::ffi::c_void {
        self.ptr
    }

    /// The mapped length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is mapped (never: at least one byte is).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes as the host sees them now.
    ///
    /// # Safety
    /// No GPU or other process may write them while the slice lives (wait for the work that
    /// writes them first).
    pub unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: mapped for `len` bytes while self lives; no writer (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// A new descriptor of the same memfd (close-on-exec), for another process.
    pub fn dup_fd(&self) -> Result<OwnedFd> {
        rustix::io::fcntl_dupfd_cloexec(self.fd.as_fd(), 0).io(|| "duplicating the memfd".into())
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        // SAFETY: mapped by `map`; whoever imported the pointer freed that memory first.
        let _ = unsafe { rustix::mm::munmap(self.ptr, self.len.max(1)) };
    }
}

/// The memfd behind the mapping (for `fstat`, sealing checks or `mmap` elsewhere; share it
/// with [`HostMapping::dup_fd`]).
impl AsFd for HostMapping {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl std::fmt::Debug for HostMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostMapping {{ fd: {}, len: {} }}", self.fd.as_raw_fd(), self.len)
    }
}

/// `minImportedHostPointerAlignment`: host pointers and sizes imported must be multiples.
pub(crate) fn alignment(ctx: &Context) -> u64 {
    let mut host = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
    let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut host);
    // SAFETY: a live physical device; the extension is enabled (checked by the caller).
    unsafe { ctx.instance().get_physical_device_properties2(ctx.physical_device(), &mut props) };
    host.min_imported_host_pointer_alignment.max(1)
}

/// `size` rounded up to a multiple of `align`.
pub(crate) fn round_up(size: u64, align: u64) -> u64 {
    size.div_ceil(align) * align
}

/// Imports `mapping` into the device as `size` bytes of memory for a resource whose memory
/// types are `resource_types`; the memory type index and the memory.
pub(crate) fn import(
    ctx: &Context,
    mapping: &HostMapping,
    size: u64,
    resource_types: u32,
) -> Result<(vk::DeviceMemory, u32)> {
    let align = alignment(ctx);
    if size == 0 || size > mapping.len() as u64 {
        return Err(Error::Import(format!("{size} bytes of a {}-byte host mapping", mapping.len())));
    }
    if mapping.ptr() as u64 % align != 0 || size % align != 0 {
        return Err(Error::Import(format!(
            "{} imports host memory in multiples of {align} bytes; this is {size} bytes at {:p}",
            ctx.device_name(),
            mapping.ptr()
        )));
    }
    let d = ctx.device();
    let fns = ash::ext::external_memory_host::Device::new(ctx.instance(), d);
    let h = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
    let mut props = vk::MemoryHostPointerPropertiesEXT::default();
    // SAFETY: a live mapping; the extension is enabled.
    unsafe { (fns.fp().get_memory_host_pointer_properties_ext)(d.handle(), h, mapping.ptr(), &mut props) }
        .result()
        .vk("vkGetMemoryHostPointerPropertiesEXT")?;
    let types = props.memory_type_bits & resource_types;
    if types == 0 {
        return Err(Error::Import(format!(
            "{} can import this host memory only as memory types {:#b}, the resource takes {resource_types:#b}",
            ctx.device_name(),
            props.memory_type_bits
        )));
    }
    let memory_type_index = types.trailing_zeros();
    let mut import = vk::ImportMemoryHostPointerInfoEXT::default().handle_type(h).host_pointer(mapping.ptr());
    // Host-pointer imports cannot be dedicated allocations (the specification forbids it).
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(memory_type_index)
        .push_next(&mut import);
    // SAFETY: a valid allocate info; the mapping outlives the memory (its owner frees the
    // memory before dropping the mapping).
    let memory = unsafe { d.allocate_memory(&info, None) }.vk("vkAllocateMemory (host pointer)")?;
    Ok((memory, memory_type_index))
}
