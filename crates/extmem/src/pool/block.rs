//! A pool's blocks as Vulkan memory: allocated exportable (never dedicated: a block holds
//! many resources), exported once per consumer, imported once by each consumer; and the
//! resources bound into them.

use crate::context::Context;
use crate::error::{Error, IoResultExt, Result, VkResultExt};
use crate::gate::Checked;
use crate::handle::HandleType;
use crate::pool_desc::BlockDesc;
use crate::shared::Resource;
use ash::vk;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

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

/// Imports a block another process exported, checked by the gate ([`crate::gate::check_block`]).
/// `fd` is taken in every case: Vulkan owns a duplicate after a successful import; the
/// original, and the duplicate where the driver left it open, are closed here.
pub(crate) fn import(ctx: &Context, checked: &Checked<BlockDesc>, fd: OwnedFd) -> Result<vk::DeviceMemory> {
    let desc = checked.get();
    // The driver is given a duplicate, closed exactly once whether or not the driver takes it
    // on failure (as in `shared/import.rs`).
    let given = rustix::io::fcntl_dupfd_cloexec(&fd, 0).io(|| "duplicate the descriptor for the driver".into())?;
    let given = given.into_raw_fd();
    let mut import = vk::ImportMemoryFdInfoKHR::default().handle_type(desc.handle_type.to_vk()).fd(given);
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(desc.size)
        .memory_type_index(desc.memory_type_index)
        .push_next(&mut import);
    // SAFETY: a valid allocate info; the duplicate stays open for the call.
    match unsafe { ctx.device().allocate_memory(&info, None) } {
        // Vulkan owns the duplicate now; the original is ours to close (dropped here).
        Ok(memory) => Ok(memory),
        Err(result) => {
            crate::gate::fdkind::release_after_failed_import(ctx, fd, given);
            Err(Error::Vulkan { call: "vkAllocateMemory (pool block import)", result })
        }
    }
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
