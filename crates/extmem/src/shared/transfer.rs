//! Moving bytes in and out of shared memory: reads, writes and fills through the GPU's copy
//! engine, each acquiring the memory from the external queue family and releasing it back,
//! through a staging buffer kept for reuse.

use super::{Handoff, Resource, SharedMemory, Staging};
use crate::error::{Error, Result};
use crate::sync::{self, Holder};
use ash::vk;

/// Extra commands recorded after a transfer's release barrier.
type Then<'a> = Option<&'a dyn Fn(&ash::Device, vk::CommandBuffer)>;

/// Bytes per texel of the formats `read` and `write` know.
fn texel_size(format: vk::Format) -> Option<u64> {
    use vk::Format as F;
    Some(match format {
        F::R8_UNORM | F::R8_UINT | F::R8_SRGB => 1,
        F::R8G8_UNORM | F::R16_SFLOAT | F::R16_UNORM | F::R16_UINT => 2,
        F::R8G8B8A8_UNORM
        | F::R8G8B8A8_SRGB
        | F::R8G8B8A8_UINT
        | F::B8G8R8A8_UNORM
        | F::B8G8R8A8_SRGB
        | F::R32_SFLOAT
        | F::R32_UINT
        | F::A2B10G10R10_UNORM_PACK32
        | F::R16G16_SFLOAT => 4,
        F::R16G16B16A16_SFLOAT | F::R16G16B16A16_UNORM | F::R32G32_SFLOAT => 8,
        F::R32G32B32A32_SFLOAT | F::R32G32B32A32_UINT => 16,
        _ => return None,
    })
}

impl SharedMemory {
    /// The bytes [`SharedMemory::read`] returns and [`SharedMemory::write`] takes: the buffer,
    /// or mip level 0 of every layer of the image, tightly packed.
    pub fn data_len(&self) -> Result<u64> {
        match self.resource {
            Resource::Buffer(_, d) => Ok(d.size),
            Resource::Image(_, d) => {
                let texel = texel_size(d.format)
                    .ok_or_else(|| Error::Unsupported(format!("reading or writing {:?} images", d.format)))?;
                Ok(texel
                    * d.extent.width as u64
                    * d.extent.height as u64
                    * d.extent.depth as u64
                    * d.array_layers as u64)
            }
        }
    }

    /// Writes `bytes` through the GPU's copy engine, then releases the memory to the external
    /// queue family (images in `GENERAL`) and waits for this side's fence: afterwards the other
    /// side may acquire it. `handoff` adds the GPU wait / signal and the counter write.
    pub fn write(&self, bytes: &[u8], handoff: Handoff<'_>) -> Result<()> {
        let len = self.data_len()?;
        if bytes.len() as u64 != len {
            return Err(Error::Unsupported(format!("write of {} bytes into {len} bytes", bytes.len())));
        }
        let counter = self.counter_of(&handoff)?;
        let mut counter_holder = counter.map(|(c, ..)| c.holder.lock().unwrap_or_else(|e| e.into_inner()));
        let bump = counter
            .zip(counter_holder.as_deref())
            .map(|((_, b, offset, value), h)| counter_bump(b, *h, self.ctx.queue_family(), offset, value));
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        staging.bytes()[..bytes.len()].copy_from_slice(bytes);
        let then: Then<'_> = bump.as_ref().map(|b| b as &dyn Fn(&ash::Device, vk::CommandBuffer));
        self.transfer(staging, true, len, &handoff, then)?;
        if let Some(h) = counter_holder.as_deref_mut() {
            *h = Holder::External;
        }
        Ok(())
    }

    /// The counter of `handoff`, checked: a 4-byte slot of another buffer.
    fn counter_of<'h>(&self, handoff: &Handoff<'h>) -> Result<Option<(&'h SharedMemory, vk::Buffer, u64, u32)>> {
        let Some((c, offset, value)) = handoff.counter else { return Ok(None) };
        if std::ptr::eq(c, self) {
            return Err(Error::Unsupported("the counter must live in another buffer than the frame".into()));
        }
        Ok(Some((c, c.counter_slot(offset)?, offset, value)))
    }

    /// The buffer holding a 4-byte counter at `offset`.
    fn counter_slot(&self, offset: u64) -> Result<vk::Buffer> {
        let Resource::Buffer(buffer, desc) = self.resource else {
            return Err(Error::Unsupported("the counter must live in a buffer".into()));
        };
        if offset % 4 != 0 || offset + 4 > desc.size {
            return Err(Error::Unsupported(format!("counter at offset {offset} of a {}-byte buffer", desc.size)));
        }
        Ok(buffer)
    }

    /// Fills a buffer with the 32-bit `value` on the GPU (`vkCmdFillBuffer`: a frame produced
    /// without any host copy), ordered by `handoff` (and writing its counter afterwards).
    /// Returns at once: the work is in flight until the [`crate::Submission`] is waited for or
    /// dropped, so frame loops keep several in flight (`fill(..)?.wait()` waits now).
    pub fn fill(&self, value: u32, handoff: Handoff<'_>) -> Result<crate::context::Submission<'_>> {
        let Resource::Buffer(buffer, _) = self.resource else {
            return Err(Error::Unsupported("fill on an image (fill takes buffers)".into()));
        };
        let family = self.ctx.queue_family();
        let counter = self.counter_of(&handoff)?;
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        let mut counter_holder = counter.map(|(c, ..)| c.holder.lock().unwrap_or_else(|e| e.into_inner()));
        let bump = counter
            .zip(counter_holder.as_deref())
            .map(|((_, b, offset, value), h)| counter_bump(b, *h, family, offset, value));
        let from = *holder;
        let submission = self.ctx.submit_async(
            |d, cb| {
                let frame = BufferFill { buffer, from, family, offset: 0, size: vk::WHOLE_SIZE, value };
                // SAFETY: recording into a command buffer in the recording state.
                unsafe { frame.record(d, cb, vk::PipelineStageFlags::TOP_OF_PIPE, &[]) };
                if let Some(bump) = &bump {
                    bump(d, cb);
                }
            },
            handoff.wait.map(|(s, v)| (s.handle(), v)),
            handoff.signal.map(|(s, v)| (s.handle(), v)),
        )?;
        // Ownership moves in command order: the next submission acquires from the external
        // queue family whether or not this one has finished.
        *holder = Holder::External;
        if let Some(h) = counter_holder.as_deref_mut() {
            *h = Holder::External;
        }
        Ok(submission)
    }

    /// The cached staging buffer, replaced by a bigger one when it holds less than `len`.
    fn staging(&self, len: u64) -> Result<std::sync::MutexGuard<'_, Option<Staging>>> {
        let mut cache = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|s| (s.len as u64) < len) {
            *cache = None;
            *cache = Some(Staging::new(&self.ctx, len)?);
        }
        Ok(cache)
    }

    /// Reads the contents through the GPU's copy engine, acquiring the memory from the
    /// external queue family first and releasing it back afterwards, ordered by `handoff`
    /// (which takes no counter: a read has nothing to announce).
    pub fn read(&self, handoff: Handoff<'_>) -> Result<Vec<u8>> {
        self.read_len(self.data_len()?, handoff)
    }

    /// Reads the first `n` bytes of a buffer (a cheap probe of what the other side wrote),
    /// with the same acquire / release as [`SharedMemory::read`].
    pub fn read_prefix(&self, n: u64, handoff: Handoff<'_>) -> Result<Vec<u8>> {
        let Resource::Buffer(_, desc) = self.resource else {
            return Err(Error::Unsupported("read_prefix on an image (use read)".into()));
        };
        self.read_len(n.min(desc.size).max(1), handoff)
    }

    fn read_len(&self, len: u64, handoff: Handoff<'_>) -> Result<Vec<u8>> {
        if handoff.counter.is_some() {
            return Err(Error::Unsupported("a counter on a read (counters follow writes and fills)".into()));
        }
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        self.transfer(staging, false, len, &handoff, None)?;
        Ok(staging.bytes()[..len as usize].to_vec())
    }

    /// Copies between the staging buffer and the resource (`len` bytes of a buffer, all of
    /// an image), acquiring from and releasing to the external queue family around it, ordered
    /// by `handoff`'s semaphores, recording `then` after the release barrier.
    fn transfer(&self, staging: &Staging, write: bool, len: u64, handoff: &Handoff<'_>, then: Then<'_>) -> Result<()> {
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        let family = self.ctx.queue_family();
        let (access, layout) = if write {
            (vk::AccessFlags::TRANSFER_WRITE, vk::ImageLayout::TRANSFER_DST_OPTIMAL)
        } else {
            (vk::AccessFlags::TRANSFER_READ, vk::ImageLayout::GENERAL)
        };
        let top = vk::PipelineStageFlags::TOP_OF_PIPE;
        let transfer = vk::PipelineStageFlags::TRANSFER;
        let bottom = vk::PipelineStageFlags::BOTTOM_OF_PIPE;
        let none = vk::DependencyFlags::empty();
        let from = *holder;
        let wait = handoff.wait.map(|(s, v)| (s.handle(), v));
        let signal = handoff.signal.map(|(s, v)| (s.handle(), v));
        self.ctx.submit_with(
            |d, cb| {
                // SAFETY: commands recorded into a command buffer in the recording state.
                unsafe {
                    match self.resource {
                        Resource::Image(image, desc) => {
                            let range = sync::color_range(desc.array_layers, 1);
                            let acquire = sync::acquire_image(image, range, from, family, layout, access);
                            d.cmd_pipeline_barrier(cb, top, transfer, none, &[], &[], &[acquire]);
                            let region = vk::BufferImageCopy::default()
                                .image_subresource(
                                    vk::ImageSubresourceLayers::default()
                                        .aspect_mask(vk::ImageAspectFlags::COLOR)
                                        .layer_count(desc.array_layers),
                                )
                                .image_extent(desc.extent);
                            if write {
                                d.cmd_copy_buffer_to_image(cb, staging.buffer, image, layout, &[region]);
                            } else {
                                d.cmd_copy_image_to_buffer(cb, image, layout, staging.buffer, &[region]);
                            }
                            let release = sync::release_image(
                                image,
                                range,
                                family,
                                layout,
                                if write { access } else { vk::AccessFlags::empty() },
                            );
                            d.cmd_pipeline_barrier(cb, transfer, bottom, none, &[], &[], &[release]);
                        }
                        Resource::Buffer(buffer, _) => {
                            let acquire = sync::acquire_buffer(buffer, from, family, access);
                            d.cmd_pipeline_barrier(cb, top, transfer, none, &[], &[acquire], &[]);
                            let region = vk::BufferCopy::default().size(len);
                            if write {
                                d.cmd_copy_buffer(cb, staging.buffer, buffer, &[region]);
                            } else {
                                d.cmd_copy_buffer(cb, buffer, staging.buffer, &[region]);
                            }
                            let release = sync::release_buffer(
                                buffer,
                                family,
                                if write { access } else { vk::AccessFlags::empty() },
                            );
                            d.cmd_pipeline_barrier(cb, transfer, bottom, none, &[], &[release], &[]);
                        }
                    }
                    if !write {
                        let host = vk::BufferMemoryBarrier::default()
                            .buffer(staging.buffer)
                            .size(vk::WHOLE_SIZE)
                            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .dst_access_mask(vk::AccessFlags::HOST_READ)
                            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED);
                        d.cmd_pipeline_barrier(cb, transfer, vk::PipelineStageFlags::HOST, none, &[], &[host], &[]);
                    }
                }
                if let Some(then) = then {
                    then(d, cb);
                }
            },
            wait,
            signal,
        )?;
        *holder = Holder::External;
        Ok(())
    }
}

/// Records the counter write of [`Handoff::counter`]: acquire the counter's
/// buffer, wait for every earlier transfer write to be available, write `value`, release.
fn counter_bump(
    buffer: vk::Buffer,
    from: Holder,
    family: u32,
    offset: u64,
    value: u32,
) -> impl Fn(&ash::Device, vk::CommandBuffer) {
    let counter = BufferFill { buffer, from, family, offset, size: 4, value };
    move |d, cb| {
        // ALL_COMMANDS chains with the frame's release barrier (whose second scope is
        // BOTTOM_OF_PIPE), so the counter is written only after the frame's bytes were made
        // available.
        let frame_written = vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
        // SAFETY: recording into a command buffer in the recording state, after the frame's
        // own release barrier.
        unsafe { counter.record(d, cb, vk::PipelineStageFlags::ALL_COMMANDS, &[frame_written]) };
    }
}

/// A `vkCmdFillBuffer` of `size` bytes at `offset` between the buffer's acquire (from `from`)
/// and its release to the external queue family.
#[derive(Clone, Copy)]
struct BufferFill {
    buffer: vk::Buffer,
    from: Holder,
    family: u32,
    offset: u64,
    size: u64,
    value: u32,
}

impl BufferFill {
    /// Records the acquire (after `after`, with the `earlier` memory barriers), the fill and the
    /// release.
    ///
    /// # Safety
    /// `cb` is a command buffer of `d` in the recording state.
    unsafe fn record(
        &self,
        d: &ash::Device,
        cb: vk::CommandBuffer,
        after: vk::PipelineStageFlags,
        earlier: &[vk::MemoryBarrier],
    ) {
        let transfer = vk::PipelineStageFlags::TRANSFER;
        let write = vk::AccessFlags::TRANSFER_WRITE;
        let acquire = sync::acquire_buffer(self.buffer, self.from, self.family, write);
        let release = sync::release_buffer(self.buffer, self.family, write);
        let none = vk::DependencyFlags::empty();
        // SAFETY: `cb` is recording (the caller's promise); the barriers name a live buffer.
        unsafe {
            d.cmd_pipeline_barrier(cb, after, transfer, none, earlier, &[acquire], &[]);
            d.cmd_fill_buffer(cb, self.buffer, self.offset, self.size, self.value);
            d.cmd_pipeline_barrier(cb, transfer, vk::PipelineStageFlags::BOTTOM_OF_PIPE, none, &[], &[release], &[]);
        }
    }
}
