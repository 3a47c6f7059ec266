//! The Vulkan consumer of a pool: each block imported once and kept; each hand-off a new image
//! or buffer bound at its offset (no fd, no driver import).

use super::block;
use super::remote::{BlockLimits, RemoteBlocks};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::handle::HandleType;
use crate::pool_desc::{BlockDesc, PoolHandle, PooledDesc};
use crate::shared::create::{bind, create_resource, requirements};
use crate::shared::Resource;
use ash::vk;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The blocks of one producer's pool imported into this context, and what is held in them.
pub struct PoolImporter {
    ctx: Arc<Context>,
    blocks: RemoteBlocks<vk::DeviceMemory>,
}

/// A resource bound into an imported block: this consumer's reference on a sub-allocation.
/// Give it back with [`PoolImporter::release`] (then tell the producer); dropping it only
/// destroys the resource.
pub struct PooledImport {
    ctx: Arc<Context>,
    resource: Resource,
    desc: PooledDesc,
    memory: vk::DeviceMemory,
}

impl PoolImporter {
    /// An importer with no block yet, taking at most 256 blocks and the device-local heap's
    /// size in bytes of them ([`BlockLimits::for_context`]).
    pub fn new(ctx: &Arc<Context>) -> PoolImporter {
        Self::with_limits(ctx, BlockLimits::for_context(ctx))
    }

    /// An importer with no block yet, taking at most `limits` of them.
    pub fn with_limits(ctx: &Arc<Context>, limits: BlockLimits) -> PoolImporter {
        PoolImporter { ctx: ctx.clone(), blocks: RemoteBlocks::with_limits(limits) }
    }

    /// Imports a block (once: a block sent again is refused). `fd` is taken in every case.
    pub fn add_block(&mut self, desc: &BlockDesc, fd: OwnedFd) -> Result<()> {
        self.blocks.check_new_block(desc)?;
        let checked = crate::gate::check_block(&self.ctx, desc, std::os::fd::AsFd::as_fd(&fd))?;
        let memory = block::import(&self.ctx, &checked, fd)?;
        self.blocks.insert_block(*desc, memory)
    }

    /// The image or buffer of a hand-off, bound at its offset in a block imported before.
    /// Refused, with nothing made, when the block was never sent, the range leaves the block or
    /// overlaps one held, or the resource does not fit the range or the block's memory type.
    pub fn bind(&mut self, desc: &PooledDesc) -> Result<PooledImport> {
        let h = desc.handle;
        let (block, memory) = self.blocks.hold(&h)?;
        let (index, memory) = (block.memory_type_index, *memory);
        let made = self.make(desc, memory, index);
        if made.is_err() {
            let _ = self.blocks.release(&h);
        }
        made
    }

    fn make(&self, desc: &PooledDesc, memory: vk::DeviceMemory, index: u32) -> Result<PooledImport> {
        let ctx = &self.ctx;
        let h = HandleType::OpaqueFd;
        let checked = crate::gate::check_pooled(ctx, desc)?;
        let resource = create_resource(ctx, &checked, h, false)?;
        let (req, _, requires) = requirements(ctx.device(), resource);
        let problem = if requires {
            Some("the driver requires a dedicated allocation for it".to_string())
        } else if req.size > desc.handle.size {
            Some(format!("it needs {} bytes", req.size))
        } else if desc.handle.offset % req.alignment.max(1) != 0 {
            Some(format!("it needs an offset aligned to {}", req.alignment))
        } else if req.memory_type_bits & (1u32 << index.min(31)) == 0 {
            Some(format!("it takes memory types {:#b}, the block is type {index}", req.memory_type_bits))
        } else {
            None
        };
        let bound = match problem {
            Some(p) => Err(Error::Pool(format!("{} does not hold the resource: {p}", desc.handle))),
            None => bind(ctx.device(), resource, memory, desc.handle.offset),
        };
        if let Err(e) = bound {
            block::destroy(ctx, resource);
            return Err(e);
        }
        Ok(PooledImport { ctx: ctx.clone(), resource, desc: *desc, memory })
    }

    /// Destroys the resource and forgets the hold: the handle to send back in `PoolRelease`.
    pub fn release(&mut self, import: PooledImport) -> Result<PoolHandle> {
        let h = import.desc.handle;
        drop(import);
        self.blocks.release(&h)?;
        Ok(h)
    }

    /// An imported block's memory (mappable where its type is host-visible).
    pub fn block_memory(&self, block: u32) -> Option<vk::DeviceMemory> {
        self.blocks.block(block).copied()
    }

    /// The sub-allocations held now.
    pub fn held(&self) -> Vec<PoolHandle> {
        self.blocks.held().copied().collect()
    }
}

impl Drop for PoolImporter {
    fn drop(&mut self) {
        for (_, memory) in self.blocks.drain_blocks() {
            block::free(&self.ctx, memory);
        }
    }
}

impl PooledImport {
    /// What was handed over.
    pub fn desc(&self) -> PooledDesc {
        self.desc
    }
    /// The buffer, when it is one.
    pub fn buffer(&self) -> Option<vk::Buffer> {
        self.resource.buffer()
    }
    /// The image, when it is one.
    pub fn image(&self) -> Option<vk::Image> {
        self.resource.image()
    }
    /// The imported block's memory (the resource is at the handle's offset).
    pub fn memory(&self) -> vk::DeviceMemory {
        self.memory
    }
}

impl Drop for PooledImport {
    fn drop(&mut self) {
        block::destroy(&self.ctx, self.resource);
    }
}
