//! Resources the application owns: images, buffers and semaphores it created (or took from
//! extmem with [`crate::SharedMemory::into_raw`]), exported from a description it supplies,
//! and the queue-family hand-off recorded into its own command buffers.
//!
//! extmem never destroys anything described here: the application does, after its GPU work
//! and the other side are done with it.
//!
//! ```
//! # fn main() -> extmem::Result<()> {
//! use extmem::{external, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, SharedMemory};
//! let ctx = Context::new(&ContextOptions::default())?;
//! let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
//! let desc = BufferDesc::new(65536, usage);
//! // An exportable buffer, checked and made by extmem, now the application's to own.
//! let raw = SharedMemory::new_buffer(&ctx, desc, HandleType::OpaqueFd, Dedicated::Never)?.into_raw()?;
//! // SAFETY: `raw` describes the live buffer and memory just handed over.
//! let (descriptor, fd) = unsafe { external::export(&ctx, &raw)? };
//! assert_eq!((descriptor.allocation_size, descriptor.offset), (raw.allocation_size, 0));
//! # drop(fd);
//! // The application destroys what it owns.
//! unsafe {
//!     ctx.device().destroy_buffer(raw.buffer().expect("a buffer"), None);
//!     ctx.device().free_memory(raw.memory, None);
//! }
//! # Ok(())
//! # }
//! ```

use crate::context::Context;
use crate::desc::{Descriptor, ResourceDesc};
use crate::error::{Error, IoResultExt, Result, VkResultExt};
use crate::handle::HandleType;
use crate::sync::{self, Holder};
use ash::vk;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

/// An image or a buffer, as the raw handle the application owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawResource {
    /// An image.
    Image(vk::Image),
    /// A buffer.
    Buffer(vk::Buffer),
}

/// An image or buffer bound to memory, all owned by the application, with what Vulkan cannot
/// be asked about them afterwards: how the memory was allocated and where the resource sits.
#[derive(Clone, Copy, Debug)]
pub struct RawMemory {
    /// The image or buffer.
    pub resource: RawResource,
    /// How it was created (its `VkImageCreateInfo` / `VkBufferCreateInfo`, which must have
    /// carried `VkExternalMemory{Image,Buffer}CreateInfo` with `handle_type`).
    pub desc: ResourceDesc,
    /// The memory it is bound to (allocated with `VkExportMemoryAllocateInfo` for export).
    pub memory: vk::DeviceMemory,
    /// `VkMemoryAllocateInfo::allocationSize`.
    pub allocation_size: u64,
    /// `VkMemoryAllocateInfo::memoryTypeIndex`.
    pub memory_type_index: u32,
    /// Whether the memory is a dedicated allocation for this resource.
    pub dedicated: bool,
    /// Where the resource is bound in the memory.
    pub offset: u64,
    /// The handle type the memory is exportable as.
    pub handle_type: HandleType,
}

impl RawMemory {
    /// The image, when it is one.
    pub fn image(&self) -> Option<vk::Image> {
        match self.resource {
            RawResource::Image(i) => Some(i),
            RawResource::Buffer(_) => None,
        }
    }

    /// The buffer, when it is one.
    pub fn buffer(&self) -> Option<vk::Buffer> {
        match self.resource {
            RawResource::Buffer(b) => Some(b),
            RawResource::Image(_) => None,
        }
    }

    /// Records the barrier that takes the resource from `holder` (the other side, or fresh)
    /// into `ctx`'s queue family, images into `layout`, for `access` at `stage`. An image
    /// whose `desc` describes a buffer gets no barrier ([`export`] refuses such a
    /// description).
    pub fn record_acquire(
        &self,
        ctx: &Context,
        cb: vk::CommandBuffer,
        holder: Holder,
        layout: vk::ImageLayout,
        access: vk::AccessFlags,
        stage: vk::PipelineStageFlags,
    ) {
        let family = ctx.queue_family();
        let src = match holder {
            Holder::Fresh => vk::PipelineStageFlags::TOP_OF_PIPE,
            _ => vk::PipelineStageFlags::ALL_COMMANDS,
        };
        match (self.resource, self.desc) {
            (RawResource::Image(i), ResourceDesc::Image(d)) => {
                let range = sync::color_range(d.array_layers, d.mip_levels);
                let b = sync::acquire_image(i, range, holder, family, layout, access);
                image_barrier(ctx, cb, src, stage, b)
            }
            (RawResource::Buffer(buf), _) => {
                let b = sync::acquire_buffer(buf, holder, family, access);
                buffer_barrier(ctx, cb, src, stage, b)
            }
            (RawResource::Image(_), ResourceDesc::Buffer(_)) => {}
        }
    }

    /// Records the barrier that releases the resource from `ctx`'s queue family to
    /// `VK_QUEUE_FAMILY_EXTERNAL` (images from `layout` into `GENERAL`), making the writes of
    /// `access` at `stage` available to the other side.
    pub fn record_release(
        &self,
        ctx: &Context,
        cb: vk::CommandBuffer,
        layout: vk::ImageLayout,
        access: vk::AccessFlags,
        stage: vk::PipelineStageFlags,
    ) {
        let family = ctx.queue_family();
        let dst = vk::PipelineStageFlags::BOTTOM_OF_PIPE;
        match (self.resource, self.desc) {
            (RawResource::Image(i), ResourceDesc::Image(d)) => {
                let range = sync::color_range(d.array_layers, d.mip_levels);
                image_barrier(ctx, cb, stage, dst, sync::release_image(i, range, family, layout, access))
            }
            (RawResource::Buffer(buf), _) => {
                buffer_barrier(ctx, cb, stage, dst, sync::release_buffer(buf, family, access))
            }
            (RawResource::Image(_), ResourceDesc::Buffer(_)) => {}
        }
    }
}

fn image_barrier(
    ctx: &Context,
    cb: vk::CommandBuffer,
    src: vk::PipelineStageFlags,
    dst: vk::PipelineStageFlags,
    barrier: vk::ImageMemoryBarrier<'_>,
) {
    // SAFETY: the application's command buffer in the recording state, a live image.
    unsafe { ctx.device().cmd_pipeline_barrier(cb, src, dst, vk::DependencyFlags::empty(), &[], &[], &[barrier]) }
}

fn buffer_barrier(
    ctx: &Context,
    cb: vk::CommandBuffer,
    src: vk::PipelineStageFlags,
    dst: vk::PipelineStageFlags,
    barrier: vk::BufferMemoryBarrier<'_>,
) {
    // SAFETY: the application's command buffer in the recording state, a live buffer.
    unsafe { ctx.device().cmd_pipeline_barrier(cb, src, dst, vk::DependencyFlags::empty(), &[], &[barrier], &[]) }
}

/// Exports memory the application allocated, described by `raw`: a new descriptor
/// (close-on-exec) the caller owns, and the [`Descriptor`] an importer needs.
///
/// Checked first, against what the driver says about the resource: the handle type's
/// extension, the memory type (within the device's and the resource's), that the resource
/// fits the allocation at its offset, and that a dedicated allocation holds it at offset 0.
///
/// # Safety
/// `raw` must describe live objects of `ctx`'s device truthfully: the memory allocated
/// exportable as `raw.handle_type` with `raw.allocation_size` and `raw.memory_type_index`, and
/// the resource created from `raw.desc` and bound at `raw.offset`.
pub unsafe fn export(ctx: &Context, raw: &RawMemory) -> Result<(Descriptor, OwnedFd)> {
    let h = raw.handle_type;
    if h == HandleType::HostAllocation {
        return Err(Error::Unsupported(
            "host-allocation memory is shared as its memfd: create it with SharedMemory::new_buffer".into(),
        ));
    }
    if !ctx.supports_handle_type(h) {
        return Err(Error::Unsupported(format!(
            "the context's device has no {:?} enabled, so it cannot export {h} memory",
            h.extension()
        )));
    }
    let requirements = requirements(ctx, raw)?;
    let count = ctx.memory_properties().memory_type_count;
    if raw.memory_type_index >= count || requirements.memory_type_bits & (1 << raw.memory_type_index) == 0 {
        return Err(Error::Unsupported(format!(
            "memory type {} cannot hold the resource: the device has {count} type(s), the resource takes {:#b}",
            raw.memory_type_index, requirements.memory_type_bits
        )));
    }
    if raw.offset.saturating_add(requirements.size) > raw.allocation_size {
        return Err(Error::Unsupported(format!(
            "the resource needs {} bytes at offset {}, but the allocation has {}",
            requirements.size, raw.offset, raw.allocation_size
        )));
    }
    if raw.dedicated && raw.offset != 0 {
        return Err(Error::Unsupported(format!("a dedicated allocation with the resource at offset {}", raw.offset)));
    }
    let info = vk::MemoryGetFdInfoKHR::default().memory(raw.memory).handle_type(h.to_vk());
    // SAFETY: the caller vouches that the memory was allocated exportable as this type.
    let fd = unsafe { ctx.memory_fd().get_memory_fd(&info) }.vk("vkGetMemoryFdKHR")?;
    let fd = owned(fd, "memory (was it allocated with VkExportMemoryAllocateInfo?)")?;
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).io(|| "setting FD_CLOEXEC".into())?;
    let row_pitch = match (raw.resource, raw.desc) {
        (RawResource::Image(i), ResourceDesc::Image(d)) if d.tiling == vk::ImageTiling::LINEAR => {
            let sub = vk::ImageSubresource::default().aspect_mask(vk::ImageAspectFlags::COLOR);
            // SAFETY: a live linear image.
            let layout = unsafe { ctx.device().get_image_subresource_layout(i, sub) };
            if layout.offset == 0 {
                layout.row_pitch
            } else {
                0
            }
        }
        _ => 0,
    };
    let descriptor = Descriptor {
        resource: raw.desc,
        handle_type: h,
        allocation_size: raw.allocation_size,
        memory_type_index: raw.memory_type_index,
        memory_type_bits: requirements.memory_type_bits,
        dedicated: raw.dedicated,
        offset: raw.offset,
        layout: match raw.resource {
            RawResource::Image(_) => vk::ImageLayout::GENERAL,
            RawResource::Buffer(_) => vk::ImageLayout::UNDEFINED,
        },
        device_uuid: ctx.device_uuid(),
        driver_uuid: ctx.driver_uuid(),
        row_pitch,
    };
    Ok((descriptor, fd))
}

/// The descriptor a successful export returned, refusing the -1 some drivers return for
/// objects that were not made exportable.
fn owned(raw: i32, what: &str) -> Result<OwnedFd> {
    if raw < 0 {
        return Err(Error::Unsupported(format!("the driver returned no descriptor for this {what}")));
    }
    // SAFETY: a successful export hands the caller a new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn requirements(ctx: &Context, raw: &RawMemory) -> Result<vk::MemoryRequirements> {
    let d = ctx.device();
    // SAFETY: the caller of `export` vouches for a live resource.
    Ok(unsafe {
        match (raw.resource, raw.desc) {
            (RawResource::Image(i), ResourceDesc::Image(_)) => d.get_image_memory_requirements(i),
            (RawResource::Buffer(b), ResourceDesc::Buffer(_)) => d.get_buffer_memory_requirements(b),
            _ => {
                return Err(Error::Unsupported(
                    "RawMemory::desc describes a different kind of resource than RawMemory::resource".into(),
                ))
            }
        }
    })
}

/// A new opaque fd (close-on-exec) for a semaphore the application created with
/// `VkExportSemaphoreCreateInfo` (`OPAQUE_FD`); the caller owns the descriptor.
///
/// # Safety
/// `semaphore` must be a live semaphore of `ctx`'s device, created exportable as an opaque fd.
pub unsafe fn export_semaphore(ctx: &Context, semaphore: vk::Semaphore) -> Result<OwnedFd> {
    let f = semaphore_fd(ctx)?;
    let info = vk::SemaphoreGetFdInfoKHR::default()
        .semaphore(semaphore)
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD);
    // SAFETY: the caller vouches for an exportable semaphore.
    let raw = unsafe { f.get_semaphore_fd(&info) }.vk("vkGetSemaphoreFdKHR")?;
    let fd = owned(raw, "semaphore (was it created with VkExportSemaphoreCreateInfo?)")?;
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).io(|| "setting FD_CLOEXEC".into())?;
    Ok(fd)
}

/// Imports an opaque semaphore fd another side exported into the application's `semaphore`
/// (of the same type: binary or timeline), permanently. `fd` is taken: Vulkan owns it on
/// success, and it is closed on failure.
///
/// # Safety
/// `semaphore` must be a live semaphore of `ctx`'s device with no pending operations.
pub unsafe fn import_semaphore(ctx: &Context, semaphore: vk::Semaphore, fd: OwnedFd) -> Result<()> {
    let f = semaphore_fd(ctx)?;
    let import = vk::ImportSemaphoreFdInfoKHR::default()
        .semaphore(semaphore)
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD)
        .fd(fd.as_raw_fd());
    // SAFETY: the caller vouches for the semaphore; on failure `fd` is closed by its drop.
    unsafe { f.import_semaphore_fd(&import) }.vk("vkImportSemaphoreFdKHR")?;
    let _ = fd.into_raw_fd(); // Vulkan owns it now
    Ok(())
}

fn semaphore_fd(ctx: &Context) -> Result<ash::khr::external_semaphore_fd::Device> {
    if !ctx.has_extension(ash::khr::external_semaphore_fd::NAME) {
        return Err(Error::Unsupported(
            "the context's device has no VK_KHR_external_semaphore_fd enabled: enable it (extmem::Context::optional_extensions) \
             or synchronise on the host"
                .into(),
        ));
    }
    Ok(ash::khr::external_semaphore_fd::Device::new(ctx.instance(), ctx.device()))
}
