//! A pool's blocks as Vulkan memory: allocated exportable (never dedicated: a block holds
//! many resources), exported once per consumer, imported once by each consumer; and the
//! resources bound into them.

use crate::caps;
use crate::context::Context;
use crate::error::{Error, IoResultExt, Result, VkResultExt};
use crate::handle::HandleType;
use crate::pool_desc::BlockDesc;
use crate::shared::Resource;
use ash::vk;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

/// Allocates an exportable block of `size` bytes of memory type `memory_type_index`.
pub(crate) fn allocate(ctx: &Context, size: u64, memory_type_index: u32) -> Result<vk::DeviceMemory> {
    let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(HandleType::OpaqueFd.to_vk());
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(memory_type_index)
        .push_next(&mut export);
    // SAFETY: a valid allocate info on a live device.
    unsafe { ctx.device().allocate_memory(&info, None) }.vk("vkAllocateMemory (pool block)")
}

/// A new descriptor (close-on-exec) of the block's memory.
pub(crate) fn export(ctx: &Context, memory: vk::DeviceMemory) -> Result<OwnedFd> {
    let info = vk::MemoryGetFdInfoKHR::default().memory(memory).handle_type(HandleType::OpaqueFd.to_vk());
    // SAFETY: the memory was allocated exportable as an opaque fd.
    let raw = unsafe { ctx.memory_fd().get_memory_fd(&info) }.vk("vkGetMemoryFdKHR (pool block)")?;
    // SAFETY: a successful export hands the caller a new descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).io(|| "setting FD_CLOEXEC".into())?;
    Ok(fd)
}

/// Imports a block another process exported. `fd` is taken in every case: Vulkan owns it
/// after a successful import, this function closes it otherwise.
pub(crate) fn import(ctx: &Context, desc: &BlockDesc, fd: OwnedFd) -> Result<vk::DeviceMemory> {
    if desc.device_uuid != ctx.device_uuid() || desc.driver_uuid != ctx.driver_uuid() {
        return Err(Error::Import(format!(
            "pool block {} comes from another device or driver (device UUID {}, this side {}): an opaque fd \
             imports only on the same device and driver; pick that device (EXTMEM_DEVICE, see `extmem caps`)",
            desc.block,
            caps::hex(&desc.device_uuid),
            caps::hex(&ctx.device_uuid())
        )));
    }
    let count = ctx.memory_properties().memory_type_count;
    if desc.memory_type_index >= count {
        return Err(Error::Import(format!(
            "pool block {} is memory type {}, this device has {count} memory type(s)",
            desc.block, desc.memory_type_index
        )));
    }
    check_fd_kind(&fd, desc)?;
    let mut import = vk::ImportMemoryFdInfoKHR::default().handle_type(desc.handle_type.to_vk()).fd(fd.as_raw_fd());
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(desc.size)
        .memory_type_index(desc.memory_type_index)
        .push_next(&mut import);
    // SAFETY: a valid allocate info; the descriptor stays open for the call.
    let memory = unsafe { ctx.device().allocate_memory(&info, None) }.vk("vkAllocateMemory (pool block import)")?;
    // Imported: Vulkan owns the descriptor now (on failure `fd` was closed by the `?` above).
    let _ = fd.into_raw_fd();
    Ok(memory)
}

/// Drivers read from or block on descriptors that are not theirs (a pipe hangs lavapipe's
/// import): only a regular file (a memfd) or a character device is let through.
fn check_fd_kind(fd: &OwnedFd, desc: &BlockDesc) -> Result<()> {
    let stat = rustix::fs::fstat(fd).io(|| format!("fstat of pool block {}'s descriptor", desc.block))?;
    let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    if !matches!(kind, rustix::fs::FileType::RegularFile | rustix::fs::FileType::CharacterDevice) {
        return Err(Error::Import(format!(
            "pool block {} came with a {kind:?} descriptor, not device memory: refused before the driver saw it",
            desc.block
        )));
    }
    Ok(())
}

/// Frees a block's memory (every resource bound to it is destroyed and idle).
pub(crate) fn free(ctx: &Context, memory: vk::DeviceMemory) {
    // SAFETY: the caller destroyed everything bound to it.
    unsafe { ctx.device().free_memory(memory, None) }
}

/// Destroys an image or buffer (idle on the GPU).
pub(crate) fn destroy(ctx: &Context, resource: Resource) {
    // SAFETY: the caller owns the resource and nothing uses it any more.
    unsafe {
        match resource {
            Resource::Image(i, _) => ctx.device().destroy_image(i, None),
            Resource::Buffer(b, _) => ctx.device().destroy_buffer(b, None),
        }
    }
}

/// `maxMemoryAllocationSize` and `bufferImageGranularity` of the context's device.
pub(crate) fn limits(ctx: &Context) -> (u64, u64) {
    let mut m3 = vk::PhysicalDeviceMaintenance3Properties::default();
    let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut m3);
    // SAFETY: a live physical device; Vulkan 1.1 is required by the context.
    unsafe { ctx.instance().get_physical_device_properties2(ctx.physical_device(), &mut props) };
    let granularity = props.properties.limits.buffer_image_granularity.max(1);
    (m3.max_memory_allocation_size, granularity)
}
