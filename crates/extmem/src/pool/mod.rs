//! An exportable memory pool: hand-offs in microseconds at any size.
//!
//! Every fresh exportable allocation costs an fd, a message and a driver import in the other
//! process, and the driver's import grows with the size (about 10 ms per GiB for device-local
//! memory on NVIDIA's driver 580, 21 ms dedicated). A pool pays that once per block:
//!
//! - The producer ([`Pool`]) allocates large exportable blocks (never dedicated: a dedicated
//!   allocation holds only its one resource) and sub-allocates images and buffers in them,
//!   with their alignment and `bufferImageGranularity`.
//! - Each block is exported to each consumer once ([`protocol::PoolLink`] sends it with the
//!   first sub-allocation in it); the consumer imports it once and keeps it
//!   ([`PoolImporter`] for Vulkan; `extmem_cuda::PoolMapper` for CUDA).
//! - A hand-off is then a metadata message (block, offset, size, generation, resource
//!   description): no fd, no driver import. The consumer answers that it holds a bound
//!   resource, and later that it released it.
//! - A sub-allocation is reused only when the producer (dropping its [`Pooled`]) and every
//!   consumer it was handed to released it; a consumer that disconnects or dies releases
//!   everything it held. Every sub-allocation has a new generation, so a stale or forged handle
//!   is refused with [`crate::Error::Pool`].
//!
//! Block size: [`PoolOptions::block_size`], 256 MiB unless set. Measured on an H100 (driver
//! 580): importing plain device-local memory costs about 39 µs fixed plus 10 ms per GiB in
//! Vulkan, and CUDA's mapping of a plain allocation about 3.7 µs per MiB; a 256 MiB block is
//! then a one-time cost of about 2.5 ms per consumer while holding 8 4K RGBA8 frames. A
//! larger request gets a block of its own, rounded up to 64 MiB (or the block size if smaller), up to the device's
//! `maxMemoryAllocationSize`. Blocks are kept until the pool is dropped (warm pool).

mod block;
mod importer;
mod ledger;
mod pooled;
pub mod protocol;
mod remote;
mod space;

pub use crate::pool_desc::{BlockDesc, PoolHandle, PooledDesc};
pub use importer::{PoolImporter, PooledImport};
pub use ledger::ConsumerId;
use pooled::linear_row_pitch;
pub use pooled::Pooled;
pub use protocol::PoolLink;
pub use remote::{BlockLimits, RemoteBlocks};

use crate::context::Context;
use crate::desc::{BufferDesc, ImageDesc, ResourceDesc};
use crate::error::{Error, Result};
use crate::handle::HandleType;
use crate::shared::create::{bind, create_resource, requirements};
use crate::shared::Resource;
use ash::vk;
use ledger::Ledger;
use space::BlockSpace;
use std::sync::{Arc, Mutex, MutexGuard};

/// How a [`Pool`] is made.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Bytes per block (default 256 MiB; see the module documentation for why).
    pub block_size: u64,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { block_size: 256 << 20 }
    }
}

impl PoolOptions {
    /// The same options with `bytes` per block.
    pub fn block_size(mut self, bytes: u64) -> Self {
        self.block_size = bytes;
        self
    }
}

/// What a pool holds, for its owner's view of use and fragmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct PoolStats {
    /// Blocks allocated.
    pub blocks: usize,
    /// Bytes of device memory the pool keeps (all blocks).
    pub bytes_kept: u64,
    /// Bytes in live sub-allocations (held by the producer or a consumer).
    pub bytes_in_use: u64,
    /// Live sub-allocations.
    pub live: usize,
    /// Free bytes in all blocks.
    pub free_bytes: u64,
    /// The largest free range of any block.
    pub largest_free: u64,
    /// Free space split inside blocks: 1 - (sum over blocks of the largest free range) / free
    /// bytes; 0 when each block's free space is one range.
    pub fragmentation: f64,
}

struct Block {
    memory: vk::DeviceMemory,
    space: BlockSpace,
}

struct State {
    blocks: Vec<Block>,
    ledger: Ledger,
    next_consumer: u32,
}

pub(crate) struct Inner {
    ctx: Arc<Context>,
    options: PoolOptions,
    memory_type_index: u32,
    max_allocation: u64,
    granularity: u64,
    state: Mutex<State>,
}

/// The producer's side of an exportable pool. Cloning gives another handle on the same pool.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// A pool of opaque-fd blocks on `ctx`'s device, in its first device-local memory type that
    /// holds exportable buffers (and images, which are checked when sub-allocated).
    pub fn new(ctx: &Arc<Context>, options: PoolOptions) -> Result<Pool> {
        if !ctx.supports_handle_type(HandleType::OpaqueFd) {
            return Err(Error::Unsupported(format!("{} cannot export opaque fds", ctx.device_name())));
        }
        let (max_allocation, granularity) = block::limits(ctx);
        let probe = ResourceDesc::Buffer(BufferDesc::new(
            4096,
            vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST,
        ));
        let probe = crate::gate::check_create(ctx, &probe, HandleType::OpaqueFd)?;
        let resource = create_resource(ctx, &probe, HandleType::OpaqueFd, false)?;
        let (req, _, _) = requirements(ctx.device(), resource);
        block::destroy(ctx, resource);
        let memory_type_index = ctx
            .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty(), vk::MemoryPropertyFlags::DEVICE_LOCAL)
            .ok_or_else(|| Error::Unsupported("no memory type holds exportable buffers".into()))?;
        let state = State { blocks: Vec::new(), ledger: Ledger::default(), next_consumer: 0 };
        let inner = Inner {
            ctx: ctx.clone(),
            options,
            memory_type_index,
            max_allocation,
            granularity,
            state: Mutex::new(state),
        };
        Ok(Pool { inner: Arc::new(inner) })
    }

    /// An exportable buffer in the pool.
    pub fn buffer(&self, desc: BufferDesc) -> Result<Pooled> {
        self.sub_allocate(ResourceDesc::Buffer(desc))
    }

    /// An exportable image in the pool, left `UNDEFINED` (its first user transitions it).
    /// CUDA consumers address `LINEAR` images only; `OPTIMAL` ones are for Vulkan consumers.
    pub fn image(&self, desc: ImageDesc) -> Result<Pooled> {
        self.sub_allocate(ResourceDesc::Image(desc))
    }

    /// Makes sure a block has `bytes` free in one range, creating one if none has; the new
    /// block's number when one was made (to time block creation apart from hand-offs).
    pub fn reserve(&self, bytes: u64) -> Result<Option<u32>> {
        let mut state = self.inner.lock();
        if state.blocks.iter().any(|b| b.space.largest_free() >= bytes) {
            return Ok(None);
        }
        Ok(Some(self.inner.new_block(&mut state, bytes)?))
    }

    fn sub_allocate(&self, desc: ResourceDesc) -> Result<Pooled> {
        let inner = &self.inner;
        let ctx = &inner.ctx;
        let checked = crate::gate::check_create(ctx, &desc, HandleType::OpaqueFd)?;
        let resource = create_resource(ctx, &checked, HandleType::OpaqueFd, false)?;
        let made = self.place(resource);
        if made.is_err() {
            block::destroy(ctx, resource);
        }
        let (handle, memory, row_pitch) = made?;
        let desc = PooledDesc { handle, resource: desc, layout: vk::ImageLayout::UNDEFINED, row_pitch };
        Ok(Pooled { pool: inner.clone(), resource, memory, desc })
    }

    /// Finds room for `resource`, binds it there and records the sub-allocation.
    fn place(&self, resource: Resource) -> Result<(PoolHandle, vk::DeviceMemory, u64)> {
        let inner = &self.inner;
        let d = inner.ctx.device();
        let (req, _, requires) = requirements(d, resource);
        if requires {
            return Err(Error::Unsupported("the driver requires a dedicated allocation for this resource".into()));
        }
        if req.memory_type_bits & (1 << inner.memory_type_index) == 0 {
            return Err(Error::Pool(format!(
                "the resource takes memory types {:#b}, the pool's blocks are type {}: use a pool of its own",
                req.memory_type_bits, inner.memory_type_index
            )));
        }
        // Starts and sizes on bufferImageGranularity: linear and optimal resources then never
        // share a granularity page, whatever their neighbours are.
        let align = req.alignment.max(inner.granularity).next_power_of_two();
        let size = req.size.div_ceil(inner.granularity) * inner.granularity;
        let mut state = inner.lock();
        let found = state.blocks.iter_mut().enumerate().find_map(|(i, b)| Some((i, b.space.allocate(size, align)?)));
        let (index, offset) = match found {
            Some(f) => f,
            None => {
                let index = inner.new_block(&mut state, size)? as usize;
                let offset = state.blocks[index].space.allocate(size, align).ok_or_else(|| {
                    Error::Pool(format!("a new block has no room for {size} bytes aligned to {align}"))
                })?;
                (index, offset)
            }
        };
        let memory = state.blocks[index].memory;
        if let Err(e) = bind(d, resource, memory, offset) {
            state.blocks[index].space.release(offset, size);
            return Err(e);
        }
        let handle = state.ledger.insert(index as u32, offset, size);
        Ok((handle, memory, linear_row_pitch(&inner.ctx, resource)))
    }

    /// A new consumer id (one per connection; [`protocol::PoolLink`] takes one).
    pub fn add_consumer(&self) -> ConsumerId {
        let mut state = self.inner.lock();
        state.next_consumer += 1;
        ConsumerId(state.next_consumer)
    }

    /// `consumer` is gone (disconnected or dead): everything it held is released.
    pub fn forget_consumer(&self, consumer: ConsumerId) -> usize {
        let mut state = self.inner.lock();
        let freed = state.ledger.forget_consumer(consumer);
        for h in &freed {
            state.blocks[h.block as usize].space.release(h.offset, h.size);
        }
        freed.len()
    }

    /// Use, fragmentation and the bytes kept.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        let (live, bytes_in_use) = state.ledger.live();
        let free_bytes: u64 = state.blocks.iter().map(|b| b.space.free_bytes()).sum();
        let largest_free = state.blocks.iter().map(|b| b.space.largest_free()).max().unwrap_or(0);
        let largest_per_block: u64 = state.blocks.iter().map(|b| b.space.largest_free()).sum();
        PoolStats {
            blocks: state.blocks.len(),
            bytes_kept: state.blocks.iter().map(|b| b.space.size()).sum(),
            bytes_in_use,
            live,
            free_bytes,
            largest_free,
            fragmentation: if free_bytes == 0 { 0.0 } else { 1.0 - largest_per_block as f64 / free_bytes as f64 },
        }
    }

    /// How many consumers hold `handle` now (`None` when it is not live).
    pub fn holders(&self, handle: &PoolHandle) -> Option<usize> {
        self.inner.lock().ledger.holders(handle)
    }

    /// The memory type of every block.
    pub fn memory_type_index(&self) -> u32 {
        self.inner.memory_type_index
    }

    /// The device's `maxMemoryAllocationSize`: no block, so no sub-allocation, is larger.
    pub fn max_allocation_size(&self) -> u64 {
        self.inner.max_allocation
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.inner.ctx
    }

    /// Block `block`'s descriptor and a new fd of its memory (close-on-exec), for a transport
    /// of the caller's own ([`protocol::PoolLink`] sends them over a [`crate::transport::Channel`]).
    pub fn export_block(&self, block: u32) -> Result<(BlockDesc, std::os::fd::OwnedFd)> {
        Ok((self.inner.block_desc(block)?, self.inner.export_block(block)?))
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_block(&self, state: &mut State, at_least: u64) -> Result<u32> {
        let block = self.options.block_size.max(1);
        let size = if at_least <= block { block } else { at_least.next_multiple_of(block.min(64 << 20)) };
        let size = size.min(self.max_allocation);
        if size < at_least {
            return Err(Error::Pool(format!(
                "{at_least} bytes do not fit one allocation on {} (maxMemoryAllocationSize {})",
                self.ctx.device_name(),
                self.max_allocation
            )));
        }
        let memory = block::allocate(&self.ctx, size, self.memory_type_index)?;
        state.blocks.push(Block { memory, space: BlockSpace::new(size) });
        Ok((state.blocks.len() - 1) as u32)
    }

    /// What a consumer needs to import block `block`.
    pub(crate) fn block_desc(&self, block: u32) -> Result<BlockDesc> {
        let state = self.lock();
        let b = state.blocks.get(block as usize).ok_or_else(|| Error::Pool(format!("no block {block}")))?;
        Ok(BlockDesc {
            block,
            size: b.space.size(),
            handle_type: HandleType::OpaqueFd,
            memory_type_index: self.memory_type_index,
            device_uuid: self.ctx.device_uuid(),
            driver_uuid: self.ctx.driver_uuid(),
        })
    }

    pub(crate) fn export_block(&self, block: u32) -> Result<std::os::fd::OwnedFd> {
        let memory = self.lock().blocks.get(block as usize).map(|b| b.memory);
        block::export(&self.ctx, memory.ok_or_else(|| Error::Pool(format!("no block {block}")))?)
    }

    pub(crate) fn holds(&self, h: &PoolHandle, c: ConsumerId) -> bool {
        self.lock().ledger.holds(h, c)
    }

    pub(crate) fn add_holder(&self, h: &PoolHandle, c: ConsumerId) -> Result<()> {
        self.lock().ledger.add_holder(h, c)
    }

    /// `c` released `h` (or refused it); the range is free again when nobody holds it.
    pub(crate) fn release_holder(&self, h: &PoolHandle, c: ConsumerId) -> Result<()> {
        let mut state = self.lock();
        if let Some(freed) = state.ledger.release_holder(h, c)? {
            state.blocks[freed.block as usize].space.release(freed.offset, freed.size);
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for b in state.blocks.drain(..) {
            block::free(&self.ctx, b.memory);
        }
    }
}
