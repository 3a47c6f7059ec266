//! Moving bytes in and out of shared memory: reads, writes and fills through the GPU's copy
//! engine, each acquiring the memory from the external queue family and releasing it back,
//! through a staging buffer kept for reuse.

use super::{Resource, SharedMemory, Staging};
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
    /// queue family (images in `GENERAL`) and waits for completion: afterwards the other side
    /// may acquire it.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        self.write_synced(bytes, None, None)
    }

    /// [`SharedMemory::write`], with the GPU waiting for `wait` (semaphore, timeline value)
    /// before the copy and signalling `signal` after it.
    pub fn write_synced(
        &self,
        bytes: &[u8],
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
    ) -> Result<()> {
        self.write_then(bytes, wait, signal, None)
    }

    /// Uploads `bytes` through the staging buffer, recording `then` after the release.
    fn write_then(
        &self,
        bytes: &[u8],
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        then: Then<'_>,
    ) -> Result<()> {
        let len = self.data_len()?;
        if bytes.len() as u64 != len {
            return Err(Error::Unsupported(format!("write of {} bytes into {len} bytes", bytes.len())));
        }
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        staging.bytes()[..bytes.len()].copy_from_slice(bytes);
        self.transfer_then(staging, true, len, wait, signal, then)
    }

    /// [`SharedMemory::write`], then, in the same submission and only after the frame's bytes
    /// are made available and released to the external queue family, writes `value` into the
    /// 4 bytes at `offset` of the buffer `counter`. Another API that waits for the counter on its
    /// GPU (CUDA's `cuStreamWaitValue32`, see `extmem-cuda`) then sees the whole frame.
    pub fn write_with_counter(&self, bytes: &[u8], counter: &SharedMemory, offset: u64, value: u32) -> Result<()> {
        let counter_buffer = counter.counter_slot(offset)?;
        let mut counter_holder = counter.holder.lock().unwrap_or_else(|e| e.into_inner());
        let bump = counter_bump(counter_buffer, *counter_holder, self.ctx.queue_family(), offset, value);
        self.write_then(bytes, None, None, Some(&bump))?;
        *counter_holder = Holder::External;
        Ok(())
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
    /// without any host copy), ordered by the optional semaphore wait / signal, and then, when
    /// `counter` is given, writes its counter as [`SharedMemory::write_with_counter`] does.
    pub fn fill_synced(
        &self,
        value: u32,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        counter: Option<(&SharedMemory, u64, u32)>,
    ) -> Result<()> {
        self.fill_async(value, wait, signal, counter)?.wait()
    }

    /// [`SharedMemory::fill_synced`] without waiting: the GPU work is in flight until the
    /// returned [`crate::Submission`] is waited for or dropped.
    pub fn fill_async(
        &self,
        value: u32,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        counter: Option<(&SharedMemory, u64, u32)>,
    ) -> Result<crate::Submission<'_>> {
        let Resource::Buffer(buffer, _) = self.resource else {
            return Err(Error::Unsupported("fill_synced on an image".into()));
        };
        if counter.is_some_and(|(c, ..)| std::ptr::eq(c, self)) {
            return Err(Error::Unsupported("the counter must live in another buffer than the frame".into()));
        }
        let family = self.ctx.queue_family();
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        let slot =
            counter.map(|(c, offset, value)| c.counter_slot(offset).map(|b| (c, b, offset, value))).transpose()?;
        let mut counter_holder = slot.map(|(c, ..)| c.holder.lock().unwrap_or_else(|e| e.into_inner()));
        let bump = slot
            .zip(counter_holder.as_deref())
            .map(|((_, b, offset, value), h)| counter_bump(b, *h, family, offset, value));
        let from = *holder;
        let submission = self.ctx.submit_async(
            |d, cb| {
                let transfer = vk::PipelineStageFlags::TRANSFER;
                // SAFETY: recording into a command buffer in the recording state.
                unsafe {
                    let acquire = sync::acquire_buffer(buffer, from, family, vk::AccessFlags::TRANSFER_WRITE);
                    d.cmd_pipeline_barrier(
                        cb,
                        vk::PipelineStageFlags::TOP_OF_PIPE,
                        transfer,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[acquire],
                        &[],
                    );
                    d.cmd_fill_buffer(cb, buffer, 0, vk::WHOLE_SIZE, value);
                    let release = sync::release_buffer(buffer, family, vk::AccessFlags::TRANSFER_WRITE);
                    d.cmd_pipeline_barrier(
                        cb,
                        transfer,
                        vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[release],
                        &[],
                    );
                }
                if let Some(bump) = &bump {
                    bump(d, cb);
                }
            },
            wait.map(|(s, v)| (s.handle(), v)),
            signal.map(|(s, v)| (s.handle(), v)),
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
    /// external queue family first and releasing it back afterwards.
    pub fn read(&self) -> Result<Vec<u8>> {
        self.read_synced(None, None)
    }

    /// [`SharedMemory::read`], with the GPU waiting for `wait` before the copy and signalling
    /// `signal` after it.
    pub fn read_synced(
        &self,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
    ) -> Result<Vec<u8>> {
        let len = self.data_len()?;
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        self.transfer(staging, false, len, wait, signal)?;
        Ok(staging.bytes()[..len as usize].to_vec())
    }

    /// Reads the first `n` bytes of a buffer (a cheap probe of what the other side wrote),
    /// with the same acquire / release as [`SharedMemory::read`].
    pub fn read_prefix(&self, n: u64) -> Result<Vec<u8>> {
        let Resource::Buffer(_, desc) = self.resource else {
            return Err(Error::Unsupported("read_prefix on an image (use read)".into()));
        };
        let len = n.min(desc.size).max(1);
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        self.transfer(staging, false, len, None, None)?;
        Ok(staging.bytes()[..len as usize].to_vec())
    }

    /// Copies between the staging buffer and the resource (`len` bytes of a buffer, all of
    /// an image), acquiring from and releasing to the external queue family around it.
    fn transfer(
        &self,
        staging: &Staging,
        write: bool,
        len: u64,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
    ) -> Result<()> {
        self.transfer_then(staging, write, len, wait, signal, None)
    }

    /// [`SharedMemory::transfer`], recording `then` after the release barrier.
    fn transfer_then(
        &self,
        staging: &Staging,
        write: bool,
        len: u64,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        then: Then<'_>,
    ) -> Result<()> {
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
        let wait = wait.map(|(s, v)| (s.handle(), v));
        let signal = signal.map(|(s, v)| (s.handle(), v));
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

/// Records the counter write of [`SharedMemory::write_with_counter`]: acquire the counter's
/// buffer, wait for every earlier transfer write to be available, write `value`, release.
fn counter_bump(
    buffer: vk::Buffer,
    from: Holder,
    family: u32,
    offset: u64,
    value: u32,
) -> impl Fn(&ash::Device, vk::CommandBuffer) {
    move |d, cb| {
        let transfer = vk::PipelineStageFlags::TRANSFER;
        // SAFETY: recording into a command buffer in the recording state, after the frame's
        // own release barrier.
        unsafe {
            // ALL_COMMANDS chains with the frame's release barrier (whose second scope is
            // BOTTOM_OF_PIPE), so the counter is written only after the frame's bytes were made
            // available.
            let acquire = sync::acquire_buffer(buffer, from, family, vk::AccessFlags::TRANSFER_WRITE);
            let frame_written = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::ALL_COMMANDS,
                transfer,
                vk::DependencyFlags::empty(),
                &[frame_written],
                &[acquire],
                &[],
            );
            d.cmd_fill_buffer(cb, buffer, offset, 4, value);
            let release = sync::release_buffer(buffer, family, vk::AccessFlags::TRANSFER_WRITE);
            d.cmd_pipeline_barrier(
                cb,
                transfer,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                vk::DependencyFlags::empty(),
                &[],
                &[release],
                &[],
            );
        }
    }
}
