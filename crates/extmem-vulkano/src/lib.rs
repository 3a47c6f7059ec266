//! extmem with vulkano: an extmem [`Context`] on a vulkano device and queue ([`context`]), and
//! a vulkano image or buffer described for extmem's export ([`raw_image`], [`raw_buffer`]).
//!
//! vulkano 0.35 uses ash 0.38 like extmem, so its handles (`Handle::handle()`) are ash's
//! types. Allocate the image with vulkano's allocator made exportable
//! (`GenericMemoryAllocatorCreateInfo::export_handle_types`) and the image with
//! `ImageCreateInfo::external_memory_handle_types`; the descriptor then carries the
//! allocator's block, the image's offset in it and its size, so the importer binds it where
//! vulkano did.

use extmem::external::{RawMemory, RawResource};
use extmem::{AppDevice, BufferDesc, Context, HandleType, ImageDesc, QueueAccess, ResourceDesc};
use std::ffi::CString;
use std::sync::Arc;
use vulkano::buffer::Subbuffer;
use vulkano::device::Queue;
use vulkano::image::{Image, ImageMemory};
use vulkano::memory::ResourceMemory;
use vulkano::VulkanObject;

/// An extmem context on vulkano's device and queue: extmem submits only inside
/// `Queue::with`, vulkano's own queue lock. Keep the device alive while the context lives.
/// The device needs `khr_external_memory_fd` enabled ([`Context::required_extensions`]).
///
/// ```
/// use std::sync::Arc;
/// fn share(queue: &Arc<vulkano::device::Queue>, image: &Arc<vulkano::image::Image>) -> extmem::Result<()> {
///     let ctx = extmem_vulkano::context(queue)?;
///     let raw = extmem_vulkano::raw_image(image, extmem::HandleType::OpaqueFd)?;
///     // SAFETY: `raw` describes vulkano's live image and its allocator block.
///     let (descriptor, fd) = unsafe { extmem::external::export(&ctx, &raw)? };
///     /* ... send them ... */
///     # drop((descriptor, fd));
///     Ok(())
/// }
/// ```
pub fn context(queue: &Arc<Queue>) -> extmem::Result<Arc<Context>> {
    let device = queue.device();
    let instance = device.instance();
    // SAFETY: loads the same system loader vulkano loaded.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| extmem::Error::Loader(e.to_string()))?;
    // SAFETY: vulkano's live handles; only function pointers are loaded for them.
    let (ash_instance, ash_device) = unsafe {
        let i = ash::Instance::load(entry.static_fn(), instance.handle());
        let d = ash::Device::load(i.fp_v1_0(), device.handle());
        (i, d)
    };
    let enabled: Vec<CString> = device.enabled_extensions().into();
    let timeline = device.enabled_features().timeline_semaphore;
    let q = queue.clone();
    let app = AppDevice::new(
        &entry,
        &ash_instance,
        device.physical_device().handle(),
        &ash_device,
        queue.queue_family_index(),
        queue.handle(),
    )
    .extensions(enabled.iter().map(CString::as_c_str))
    .timeline_semaphores(timeline)
    .queue_access(QueueAccess::with(move |submit| q.with(|_guard| submit())));
    // SAFETY: vulkano's handles and the lists it created them with; the caller keeps the
    // device (and so the instance) alive while the context lives.
    unsafe { Context::from_app(app) }
}

/// The memory a vulkano resource is bound to, when it is one ordinary allocation.
fn one_memory(memory: &ImageMemory) -> extmem::Result<&ResourceMemory> {
    match memory {
        ImageMemory::Normal(parts) if parts.len() == 1 => Ok(&parts[0]),
        _ => Err(extmem::Error::Unsupported(
            "the vulkano image is sparse, disjoint or a swapchain image: only images bound to one allocation are \
             shared"
                .into(),
        )),
    }
}

/// A vulkano image described for [`extmem::external::export`]: the image, the allocator
/// block it lives in and where. vulkano keeps owning both; keep `image` alive while the
/// description is used and while the other side uses the memory.
pub fn raw_image(image: &Arc<Image>, handle_type: HandleType) -> extmem::Result<RawMemory> {
    let memory = one_memory(image.memory())?;
    let [width, height, depth] = image.extent();
    let mut desc = ImageDesc::new_2d(image.format().into(), width, height, image.usage().into())
        .tiling(image.tiling().into())
        .array_layers(image.array_layers());
    desc.extent.depth = depth;
    desc.mip_levels = image.mip_levels();
    Ok(raw(RawResource::Image(image.handle()), ResourceDesc::Image(desc), memory, handle_type))
}

/// [`raw_image`] for a vulkano buffer.
pub fn raw_buffer<T: ?Sized>(buffer: &Subbuffer<T>, handle_type: HandleType) -> extmem::Result<RawMemory> {
    let raw_buffer = buffer.buffer();
    let memory = match raw_buffer.memory() {
        vulkano::buffer::BufferMemory::Normal(m) => m,
        _ => return Err(extmem::Error::Unsupported("a sparse or external vulkano buffer".into())),
    };
    let usage = raw_buffer.usage().into();
    let desc = ResourceDesc::Buffer(BufferDesc::new(raw_buffer.size(), usage));
    Ok(raw(RawResource::Buffer(raw_buffer.handle()), desc, memory, handle_type))
}

/// The code blocks of the repository's README, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

fn raw(resource: RawResource, desc: ResourceDesc, memory: &ResourceMemory, handle_type: HandleType) -> RawMemory {
    let block = memory.device_memory();
    RawMemory {
        resource,
        desc,
        memory: block.handle(),
        allocation_size: block.allocation_size(),
        memory_type_index: block.memory_type_index(),
        dedicated: block.is_dedicated(),
        offset: memory.offset(),
        handle_type,
    }
}
