//! Exportable and imported images and buffers that own their Vulkan objects: the type and
//! what it tells about itself. Creation is in [`create`], import and its checks in
//! [`import`], reads, writes and fills in [`transfer`] (through [`staging`]).

pub(crate) mod create;
mod handoff;
mod import;
mod raw;
mod staging;
mod steps;
mod transfer;

use crate::caps;
use crate::context::Context;
use crate::desc::{BufferDesc, Descriptor, ImageDesc, ResourceDesc};
use crate::error::{IoResultExt, Result, VkResultExt};
use crate::handle::HandleType;
use crate::host::HostMapping;
use crate::sync::Holder;
use ash::vk;
use staging::Staging;

pub use handoff::Handoff;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
pub use steps::ImportSteps;

/// Whether exported memory is a dedicated allocation for its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dedicated {
    /// Always (the default): CUDA maps dedicated allocations far faster, and an importer gets
    /// exactly the resource's memory (measured in `bench/results/h100.md`).
    #[default]
    Always,
    /// Only when the driver prefers or requires it.
    IfPreferred,
    /// Only when the driver requires it.
    Never,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Resource {
    Image(vk::Image, ImageDesc),
    Buffer(vk::Buffer, BufferDesc),
}

impl Resource {
    /// The image, when it is one.
    pub(crate) fn image(self) -> Option<vk::Image> {
        match self {
            Resource::Image(i, _) => Some(i),
            Resource::Buffer(..) => None,
        }
    }
    /// The buffer, when it is one.
    pub(crate) fn buffer(self) -> Option<vk::Buffer> {
        match self {
            Resource::Buffer(b, _) => Some(b),
            Resource::Image(..) => None,
        }
    }
}

/// Memory that can cross an instance or process boundary, with the image or buffer bound to
/// it. Dropping it destroys both (after the device is idle for them).
///
/// ```
/// # fn main() -> extmem::Result<()> {
/// use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, SharedMemory};
/// let exporter = Context::new(&ContextOptions::default())?;
/// let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
/// let buffer = SharedMemory::new_buffer(&exporter, BufferDesc::new(4096, usage), HandleType::OpaqueFd, Dedicated::Always)?;
/// buffer.write(&[42; 4096], Handoff::host())?; // released to the other side
/// let (descriptor, fd) = buffer.export()?; // what a socket carries to another process
///
/// // Another instance (here in the same process) imports it, with the checks done first.
/// let importer = Context::new(&ContextOptions::default())?;
/// let imported = SharedMemory::import(&importer, &descriptor, fd)?;
/// assert_eq!(imported.read(Handoff::host())?, vec![42; 4096]);
/// # Ok(())
/// # }
/// ```
pub struct SharedMemory {
    ctx: Arc<Context>,
    resource: Resource,
    memory: vk::DeviceMemory,
    allocation_size: u64,
    memory_type_index: u32,
    memory_type_bits: u32,
    dedicated: bool,
    /// Where the resource is bound in the memory (an import's descriptor may say non-zero).
    offset: u64,
    handle_type: HandleType,
    holder: Mutex<Holder>,
    /// The staging buffer of the last `read` / `write`, reused while it is big enough
    /// (allocating one costs about a millisecond on NVIDIA's driver).
    staging: Mutex<Option<Staging>>,
    /// For host-allocation memory, the mapped memfd behind it (dropped after the memory is
    /// freed: fields drop after `Drop::drop`).
    host: Option<HostMapping>,
}

/// Destroys a half-made resource when creation fails part way.
struct Cleanup<'a> {
    device: &'a ash::Device,
    resource: Option<Resource>,
    memory: Option<vk::DeviceMemory>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // SAFETY: objects made by the failed creation, never used by the GPU.
        unsafe {
            match self.resource.take() {
                Some(Resource::Image(i, _)) => self.device.destroy_image(i, None),
                Some(Resource::Buffer(b, _)) => self.device.destroy_buffer(b, None),
                None => {}
            }
            if let Some(m) = self.memory.take() {
                self.device.free_memory(m, None);
            }
        }
    }
}

impl SharedMemory {
    /// For host-allocation memory, the host mapping of its pages (what CUDA registers with
    /// `cuMemHostRegister`, or the CPU reads once the GPU's writes are waited for).
    pub fn host_mapping(&self) -> Option<&HostMapping> {
        self.host.as_ref()
    }

    /// The descriptor an importer needs.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            resource: self.desc(),
            handle_type: self.handle_type,
            allocation_size: self.allocation_size,
            memory_type_index: self.memory_type_index,
            memory_type_bits: self.memory_type_bits,
            dedicated: self.dedicated,
            offset: self.offset,
            layout: match self.resource {
                Resource::Image(..) => vk::ImageLayout::GENERAL,
                Resource::Buffer(..) => vk::ImageLayout::UNDEFINED,
            },
            device_uuid: self.ctx.device_uuid(),
            driver_uuid: self.ctx.driver_uuid(),
            row_pitch: self.row_pitch(),
        }
    }

    /// For a `LINEAR` image whose mip 0, layer 0 starts at the beginning of its memory, the
    /// bytes between rows; 0 otherwise.
    pub fn row_pitch(&self) -> u64 {
        let Resource::Image(image, desc) = self.resource else { return 0 };
        if desc.tiling != vk::ImageTiling::LINEAR {
            return 0;
        }
        let sub = vk::ImageSubresource::default().aspect_mask(vk::ImageAspectFlags::COLOR);
        // SAFETY: a live linear image.
        let layout = unsafe { self.ctx.device().get_image_subresource_layout(image, sub) };
        if layout.offset == 0 {
            layout.row_pitch
        } else {
            0
        }
    }

    /// Exports the memory: a new descriptor (close-on-exec) that the caller owns, and what
    /// the importer needs to know. Each call makes a new descriptor.
    pub fn export(&self) -> Result<(Descriptor, OwnedFd)> {
        if let Some(mapping) = &self.host {
            return Ok((self.descriptor(), mapping.dup_fd()?));
        }
        let info = vk::MemoryGetFdInfoKHR::default().memory(self.memory).handle_type(self.handle_type.to_vk());
        // SAFETY: the memory was allocated exportable as this handle type.
        let raw = unsafe { self.ctx.memory_fd().get_memory_fd(&info) }.vk("vkGetMemoryFdKHR")?;
        // SAFETY: a successful export hands the caller a new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).io(|| "setting FD_CLOEXEC".into())?;
        Ok((self.descriptor(), fd))
    }

    /// The context the memory belongs to.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }
    /// The memory.
    pub fn memory(&self) -> vk::DeviceMemory {
        self.memory
    }
    /// The image, when the memory holds one.
    pub fn image(&self) -> Option<vk::Image> {
        self.resource.image()
    }
    /// The buffer, when the memory holds one.
    pub fn buffer(&self) -> Option<vk::Buffer> {
        self.resource.buffer()
    }
    /// What the memory holds.
    pub fn desc(&self) -> ResourceDesc {
        match self.resource {
            Resource::Image(_, d) => ResourceDesc::Image(d),
            Resource::Buffer(_, d) => ResourceDesc::Buffer(d),
        }
    }
    /// The allocation's size.
    pub fn allocation_size(&self) -> u64 {
        self.allocation_size
    }
    /// Whether it is a dedicated allocation.
    pub fn is_dedicated(&self) -> bool {
        self.dedicated
    }
    /// The handle type it is shared as.
    pub fn handle_type(&self) -> HandleType {
        self.handle_type
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        let d = self.ctx.device();
        // SAFETY: `submit` waits for its work, so the GPU no longer uses these objects.
        unsafe {
            match self.resource {
                Resource::Image(i, _) => d.destroy_image(i, None),
                Resource::Buffer(b, _) => d.destroy_buffer(b, None),
            }
            d.free_memory(self.memory, None);
        }
    }
}

fn what(desc: &ResourceDesc) -> String {
    match desc {
        ResourceDesc::Image(i) => format!(
            "{:?} {:?} images ({}x{}, usage {:?})",
            i.format, i.tiling, i.extent.width, i.extent.height, i.usage
        ),
        ResourceDesc::Buffer(b) => format!("buffers of usage {:?}", b.usage),
    }
}

pub(crate) fn features(ctx: &Context, desc: &ResourceDesc, h: HandleType) -> Option<caps::Features> {
    match desc {
        ResourceDesc::Image(i) => caps::image_features(ctx.instance(), ctx.physical_device(), i, h),
        ResourceDesc::Buffer(b) => caps::buffer_features(ctx.instance(), ctx.physical_device(), b, h),
    }
}
