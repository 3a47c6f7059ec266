//! Shared memory as wgpu textures and buffers: imported from a descriptor, or made exportable
//! for wgpu to render into; and the queue-family hand-off recorded into wgpu's encoders.

use crate::error::{Error, Result};
use crate::format;
use extmem::external::RawMemory;
use extmem::sync::Holder;
use extmem::{vk, Context, Dedicated, Descriptor, HandleType, ImageDesc, ResourceDesc, SharedMemory};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use wgpu::hal::api::Vulkan;

/// A `wgpu::Texture` whose image and memory are shared with another process or API.
pub struct SharedTexture {
    ctx: Arc<Context>,
    texture: wgpu::Texture,
    raw: RawMemory,
}

impl SharedTexture {
    /// Imports what the other side sent (with extmem's checks: device and driver UUID,
    /// memory type, size, handle type) as a 2D texture wgpu can use for `usage`, which the
    /// exporter's image usage must cover. `fd` is taken, as in [`SharedMemory::import`].
    pub fn import(
        device: &wgpu::Device,
        ctx: &Arc<Context>,
        descriptor: &Descriptor,
        fd: OwnedFd,
        usage: wgpu::TextureUsages,
    ) -> Result<SharedTexture> {
        let ResourceDesc::Image(image) = descriptor.resource else {
            return Err(Error::Mismatch("the descriptor holds a buffer: import it with SharedBuffer::import".into()));
        };
        let wgpu_format = format::from_vk(image.format)
            .ok_or_else(|| Error::Mismatch(format!("{:?} has no wgpu texture format", image.format)))?;
        let needed = format::image_usage(usage);
        if !image.usage.contains(needed) || image.extent.depth != 1 || image.array_layers != 1 {
            return Err(Error::Mismatch(format!(
                "a wgpu texture with {usage:?} needs a 2D image with usage {needed:?}; the other side's has {:?}, \
                 {} layer(s), depth {}",
                image.usage, image.array_layers, image.extent.depth
            )));
        }
        let shared = SharedMemory::import(ctx, descriptor, fd)?;
        // SAFETY: the image was created from `image` on the device of `ctx`, which is `device`'s.
        unsafe { Self::wrap(device, ctx, shared, wgpu_format, usage) }
    }

    /// A texture wgpu can render into (or use for `usage`) whose memory can be exported with
    /// [`SharedTexture::export`]. `COPY_SRC` is added so the other side can read it back.
    pub fn new_exportable(
        device: &wgpu::Device,
        ctx: &Arc<Context>,
        size: (u32, u32),
        wgpu_format: wgpu::TextureFormat,
        usage: wgpu::TextureUsages,
    ) -> Result<SharedTexture> {
        let vk_format = format::to_vk(wgpu_format)
            .filter(|f| format::from_vk(*f) == Some(wgpu_format))
            .ok_or_else(|| Error::Mismatch(format!("{wgpu_format:?} is not among the formats extmem-wgpu shares")))?;
        let usage = usage | wgpu::TextureUsages::COPY_SRC;
        let desc = ImageDesc::new_2d(vk_format, size.0, size.1, format::image_usage(usage));
        let shared = SharedMemory::new_image(ctx, desc, HandleType::OpaqueFd, Dedicated::Always)?;
        // SAFETY: made from `desc` on the device of `ctx`, which is `device`'s.
        unsafe { Self::wrap(device, ctx, shared, wgpu_format, usage) }
    }

    /// # Safety
    /// `shared` holds an image of `device`, created for `usage` in `wgpu_format`.
    unsafe fn wrap(
        device: &wgpu::Device,
        ctx: &Arc<Context>,
        shared: SharedMemory,
        wgpu_format: wgpu::TextureFormat,
        usage: wgpu::TextureUsages,
    ) -> Result<SharedTexture> {
        let raw = shared.into_raw()?;
        let (ResourceDesc::Image(image), Some(vk_image)) = (raw.desc, raw.image()) else {
            unreachable!("made from an image description")
        };
        let size = wgpu::Extent3d { width: image.extent.width, height: image.extent.height, depth_or_array_layers: 1 };
        let hal_desc = wgpu::hal::TextureDescriptor {
            label: Some("extmem shared texture"),
            size,
            mip_level_count: image.mip_levels,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu_format,
            usage: format::hal_uses(usage),
            memory_flags: wgpu::hal::MemoryFlags::empty(),
            view_formats: Vec::new(),
        };
        // wgpu destroys the image and frees its memory when it is done with the texture.
        let d = ctx.device().clone();
        let memory = raw.memory;
        let destroy: wgpu::hal::DropCallback = Box::new(move || {
            // SAFETY: wgpu calls this once, after its last use of the texture.
            unsafe {
                d.destroy_image(vk_image, None);
                d.free_memory(memory, None);
            }
        });
        // SAFETY: the image belongs to `device` and was created as `hal_desc` says.
        let texture = unsafe {
            let hal = device.as_hal::<Vulkan>().ok_or(Error::NotVulkan)?;
            let hal_texture =
                hal.texture_from_raw(vk_image, &hal_desc, Some(destroy), wgpu::hal::vulkan::TextureMemory::External);
            drop(hal);
            let desc = wgpu::TextureDescriptor {
                label: Some("extmem shared texture"),
                size,
                mip_level_count: image.mip_levels,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu_format,
                usage,
                view_formats: &[],
            };
            // A new image is in `VK_IMAGE_LAYOUT_UNDEFINED`: wgpu's `UNINITIALIZED`.
            device.create_texture_from_hal::<Vulkan>(hal_texture, &desc, wgpu::TextureUses::UNINITIALIZED)
        };
        Ok(SharedTexture { ctx: ctx.clone(), texture, raw })
    }

    /// The wgpu texture.
    pub fn texture(&self) -> &wgpu::Texture {
        &self.texture
    }

    /// The image, its memory and how they were made.
    pub fn raw(&self) -> &RawMemory {
        &self.raw
    }

    /// A new descriptor for the memory and what an importer needs to know.
    pub fn export(&self) -> Result<(Descriptor, OwnedFd)> {
        // SAFETY: `raw` describes the live image and memory extmem made for this texture.
        Ok(unsafe { extmem::external::export(&self.ctx, &self.raw) }?)
    }

    /// Takes the texture over from the other side (from `VK_QUEUE_FAMILY_EXTERNAL`, in
    /// `GENERAL`) in a submission of its own on wgpu's queue, so it precedes the barriers wgpu
    /// puts before its next use. `wgpu_state` is the use wgpu last made of the texture
    /// (`TextureUses::UNINITIALIZED` before the first): the image returns to that use's layout.
    pub fn acquire(&self, device: &wgpu::Device, queue: &wgpu::Queue, wgpu_state: wgpu::TextureUses) {
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("extmem acquire") });
        let (layout, access, stage) = layout_of(wgpu_state);
        self.record(&mut encoder, |ctx, cb| self.raw.record_acquire(ctx, cb, Holder::External, layout, access, stage));
        queue.submit([encoder.finish()]);
    }

    /// The release to the other side (`VK_QUEUE_FAMILY_EXTERNAL`, `GENERAL`) after wgpu's last
    /// use of the texture (`last_use`: how it was used), as a command buffer of its own: submit
    /// it after the work, `queue.submit([encoder.finish(), shared.release_commands(..)])`.
    /// (wgpu 30 does not let raw commands share an encoder with wgpu's own; the barrier waits
    /// for everything submitted before it on the queue.)
    pub fn release_commands(&self, device: &wgpu::Device, last_use: wgpu::TextureUses) -> wgpu::CommandBuffer {
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("extmem release") });
        let (layout, access, stage) = layout_of(last_use);
        self.record(&mut encoder, |ctx, cb| self.raw.record_release(ctx, cb, layout, access, stage));
        encoder.finish()
    }

    fn record(&self, encoder: &mut wgpu::CommandEncoder, f: impl FnOnce(&Context, vk::CommandBuffer)) {
        // SAFETY: only a barrier is recorded into the open command buffer of an encoder wgpu
        // records nothing into (its own or raw commands, never both); nothing is destroyed.
        unsafe {
            encoder.as_hal_mut::<Vulkan, _, _>(|hal| {
                if let Some(hal) = hal {
                    f(&self.ctx, hal.raw_handle());
                }
            })
        }
    }
}

/// The layout, access and stage wgpu-hal gives an image for `uses` (its
/// `derive_image_layout`), with `GENERAL` for a texture wgpu has not used yet.
fn layout_of(uses: wgpu::TextureUses) -> (vk::ImageLayout, vk::AccessFlags, vk::PipelineStageFlags) {
    use wgpu::TextureUses as U;
    let all = vk::PipelineStageFlags::ALL_COMMANDS;
    let rw = vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE;
    let (layout, access) = if uses == U::COPY_SRC {
        (vk::ImageLayout::TRANSFER_SRC_OPTIMAL, vk::AccessFlags::TRANSFER_READ)
    } else if uses == U::COPY_DST {
        (vk::ImageLayout::TRANSFER_DST_OPTIMAL, vk::AccessFlags::TRANSFER_WRITE)
    } else if uses == U::RESOURCE {
        (vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL, vk::AccessFlags::SHADER_READ)
    } else if uses == U::COLOR_TARGET {
        (vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL, vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
    } else {
        (vk::ImageLayout::GENERAL, rw)
    };
    (layout, access, all)
}

/// A `wgpu::Buffer` on memory another process or API shared.
pub struct SharedBuffer {
    buffer: Option<wgpu::Buffer>,
    device: wgpu::Device,
    ctx: Arc<Context>,
    raw: RawMemory,
}

impl SharedBuffer {
    /// Imports what the other side sent as a buffer wgpu can use for `usage` (not mapping:
    /// wgpu cannot map memory it did not allocate). `fd` is taken, as in
    /// [`SharedMemory::import`].
    pub fn import(
        device: &wgpu::Device,
        ctx: &Arc<Context>,
        descriptor: &Descriptor,
        fd: OwnedFd,
        usage: wgpu::BufferUsages,
    ) -> Result<SharedBuffer> {
        let ResourceDesc::Buffer(b) = descriptor.resource else {
            return Err(Error::Mismatch("the descriptor holds an image: import it with SharedTexture::import".into()));
        };
        let needed = format::buffer_usage(usage);
        if !b.usage.contains(needed) || usage.intersects(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE) {
            return Err(Error::Mismatch(format!(
                "a wgpu buffer with {usage:?} needs usage {needed:?} and no mapping; the other side's has {:?}",
                b.usage
            )));
        }
        let raw = SharedMemory::import(ctx, descriptor, fd)?.into_raw()?;
        let vk_buffer = raw.buffer().expect("imported from a buffer description");
        // SAFETY: the buffer belongs to `device`; its memory is freed by `SharedBuffer`'s drop
        // after wgpu is done (wgpu destroys the buffer itself).
        let buffer = unsafe {
            let hal_buffer = wgpu::hal::vulkan::Buffer::from_raw(vk_buffer);
            let desc = wgpu::BufferDescriptor {
                label: Some("extmem shared buffer"),
                size: b.size,
                usage,
                mapped_at_creation: false,
            };
            device.create_buffer_from_hal::<Vulkan>(hal_buffer, &desc)
        };
        Ok(SharedBuffer { buffer: Some(buffer), device: device.clone(), ctx: ctx.clone(), raw })
    }

    /// The wgpu buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }

    /// The buffer, its memory and how they were made.
    pub fn raw(&self) -> &RawMemory {
        &self.raw
    }
}

impl Drop for SharedBuffer {
    fn drop(&mut self) {
        // wgpu destroys the buffer once its work is done; the memory goes after that.
        drop(self.buffer.take());
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        // SAFETY: no work of wgpu's uses the memory any more.
        unsafe { self.ctx.device().free_memory(self.raw.memory, None) };
    }
}
