//! The producer's reference on a sub-allocation, with its image or buffer bound.

use super::{block, Inner};
use crate::context::Context;
use crate::pool_desc::{PoolHandle, PooledDesc};
use crate::shared::Resource;
use ash::vk;
use std::sync::Arc;

pub(super) fn linear_row_pitch(ctx: &Context, resource: Resource) -> u64 {
    let Resource::Image(image, desc) = resource else { return 0 };
    if desc.tiling != vk::ImageTiling::LINEAR {
        return 0;
    }
    let sub = vk::ImageSubresource::default().aspect_mask(vk::ImageAspectFlags::COLOR);
    // SAFETY: a live linear image.
    let layout = unsafe { ctx.device().get_image_subresource_layout(image, sub) };
    if layout.offset == 0 {
        layout.row_pitch
    } else {
        0
    }
}

/// A sub-allocation of a [`Pool`](super::Pool) with its image or buffer bound: the producer's reference.
/// Dropping it destroys the resource and releases the producer's hold (the range is reused
/// once every consumer released it too). Make sure the GPU is done with it first.
pub struct Pooled {
    pub(super) pool: Arc<Inner>,
    pub(super) resource: Resource,
    pub(super) memory: vk::DeviceMemory,
    pub(super) desc: PooledDesc,
}

impl Pooled {
    /// Where it lies and what it is: what a consumer is sent.
    pub fn desc(&self) -> PooledDesc {
        self.desc
    }
    /// The handle of its sub-allocation.
    pub fn handle(&self) -> PoolHandle {
        self.desc.handle
    }
    /// The buffer, when it holds one.
    pub fn buffer(&self) -> Option<vk::Buffer> {
        self.resource.buffer()
    }
    /// The image, when it holds one.
    pub fn image(&self) -> Option<vk::Image> {
        self.resource.image()
    }
    /// The block's memory (the resource is at [`PoolHandle::offset`] in it).
    pub fn memory(&self) -> vk::DeviceMemory {
        self.memory
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        block::destroy(&self.pool.ctx, self.resource);
        let mut state = self.pool.lock();
        if let Ok(Some(freed)) = state.ledger.release_producer(&self.desc.handle) {
            state.blocks[freed.block as usize].space.release(freed.offset, freed.size);
        }
    }
}
