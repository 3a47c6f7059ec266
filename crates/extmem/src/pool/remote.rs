//! The consumer's view of a pool: the blocks it was sent (each imported once, kept) and the
//! sub-allocations it holds. Every hand-off is checked against both before any resource is
//! made: a block never sent, a range outside its block, a range overlapping one still held,
//! a block sent twice, and blocks past this consumer's [`BlockLimits`]. Generic over what an
//! imported block is (Vulkan memory, a CUDA mapping).

use crate::context::Context;
use crate::error::{Error, Result};
use crate::pool_desc::{BlockDesc, PoolHandle};
use ash::vk;
use std::collections::{BTreeMap, HashMap};

/// How many blocks, and how many bytes of them, a consumer imports from one producer
/// connection: a producer cannot make it map more than this, whatever it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Blocks (default 256).
    pub max_blocks: usize,
    /// Bytes of blocks, as mapped (default: the device-local heap's size; unlimited where no
    /// device is known).
    pub max_bytes: u64,
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits { max_blocks: 256, max_bytes: u64::MAX }
    }
}

impl BlockLimits {
    /// The defaults on `ctx`'s device: 256 blocks and its largest device-local heap's size.
    pub fn for_context(ctx: &Context) -> BlockLimits {
        let p = ctx.memory_properties();
        let heaps = &p.memory_heaps[..(p.memory_heap_count as usize).min(vk::MAX_MEMORY_HEAPS)];
        let local = heaps.iter().filter(|h| h.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL)).map(|h| h.size).max();
        let any = heaps.iter().map(|h| h.size).max();
        BlockLimits { max_bytes: local.or(any).unwrap_or(u64::MAX), ..BlockLimits::default() }
    }

    /// The same limits with at most `n` blocks.
    pub fn max_blocks(mut self, n: usize) -> Self {
        self.max_blocks = n;
        self
    }

    /// The same limits with at most `bytes` of blocks.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }
}

/// Imported blocks (`T` each) and the sub-allocations held in them.
#[derive(Debug)]
pub struct RemoteBlocks<T> {
    blocks: HashMap<u32, (BlockDesc, T)>,
    held: BTreeMap<(u32, u64), PoolHandle>,
    limits: BlockLimits,
    bytes: u64,
}

impl<T> Default for RemoteBlocks<T> {
    fn default() -> Self {
        Self::with_limits(BlockLimits::default())
    }
}

impl<T> RemoteBlocks<T> {
    /// No block yet; at most `limits` of them.
    pub fn with_limits(limits: BlockLimits) -> Self {
        RemoteBlocks { blocks: HashMap::new(), held: BTreeMap::new(), limits, bytes: 0 }
    }

    /// The limits blocks are checked against.
    pub fn limits(&self) -> BlockLimits {
        self.limits
    }

    /// Checks the blocks to come against `limits` (those kept already stay).
    pub fn set_limits(&mut self, limits: BlockLimits) {
        self.limits = limits;
    }

    /// Refuses a block that was already sent (each block is imported once), or that would take
    /// this consumer past its [`BlockLimits`].
    pub fn check_new_block(&self, desc: &BlockDesc) -> Result<()> {
        if self.blocks.contains_key(&desc.block) {
            return Err(Error::Pool(format!("block {} was sent twice: a block is imported once and kept", desc.block)));
        }
        let max = self.limits.max_blocks;
        if self.blocks.len() >= max {
            return Err(Error::Pool(format!(
                "block {} is one too many: this consumer imports at most {max} blocks per producer connection \
                 (BlockLimits::max_blocks)",
                desc.block
            )));
        }
        let total = self.bytes.saturating_add(desc.size);
        if total > self.limits.max_bytes {
            return Err(Error::Pool(format!(
                "block {} of {} bytes would bring this producer's blocks to {total} bytes, past this consumer's limit \
                 of {} bytes of blocks per producer connection (BlockLimits::max_bytes; by default the device-local \
                 heap's size)",
                desc.block, desc.size, self.limits.max_bytes
            )));
        }
        Ok(())
    }

    /// Keeps an imported block.
    pub fn insert_block(&mut self, desc: BlockDesc, imported: T) -> Result<()> {
        self.check_new_block(&desc)?;
        self.bytes = self.bytes.saturating_add(desc.size);
        self.blocks.insert(desc.block, (desc, imported));
        Ok(())
    }

    /// Checks `h` against the blocks and what is held, and records it as held: the block it
    /// lies in back.
    pub fn hold(&mut self, h: &PoolHandle) -> Result<(&BlockDesc, &T)> {
        let (desc, imported) = self
            .blocks
            .get(&h.block)
            .ok_or_else(|| Error::Pool(format!("{h}: block {} was never sent to this consumer", h.block)))?;
        if h.size == 0 || h.offset.checked_add(h.size).is_none_or(|end| end > desc.size) {
            return Err(Error::Pool(format!("{h} lies outside the block's {} bytes", desc.size)));
        }
        if let Some((_, other)) = self.held.range((h.block, 0)..(h.block, h.end())).next_back() {
            if other.end() > h.offset {
                return Err(Error::Pool(format!("{h} overlaps {other}, which this consumer still holds")));
            }
        }
        self.held.insert((h.block, h.offset), *h);
        Ok((desc, imported))
    }

    /// Forgets a held sub-allocation (released, or refused after [`RemoteBlocks::hold`]).
    pub fn release(&mut self, h: &PoolHandle) -> Result<()> {
        match self.held.get(&(h.block, h.offset)) {
            Some(held) if held == h => {
                self.held.remove(&(h.block, h.offset));
                Ok(())
            }
            Some(held) => Err(Error::Pool(format!("{h} is not held here: {held} is"))),
            None => Err(Error::Pool(format!("{h} is not held here"))),
        }
    }

    /// An imported block.
    pub fn block(&self, block: u32) -> Option<&T> {
        self.blocks.get(&block).map(|(_, t)| t)
    }

    /// The sub-allocations held.
    pub fn held(&self) -> impl Iterator<Item = &PoolHandle> {
        self.held.values()
    }

    /// The imported blocks (to free them).
    pub fn drain_blocks(&mut self) -> impl Iterator<Item = (BlockDesc, T)> + '_ {
        self.held.clear();
        self.bytes = 0;
        self.blocks.drain().map(|(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::{BlockLimits, RemoteBlocks};
    use crate::handle::HandleType;
    use crate::pool_desc::{BlockDesc, PoolHandle};

    fn block(n: u32, size: u64) -> BlockDesc {
        BlockDesc {
            block: n,
            size,
            handle_type: HandleType::OpaqueFd,
            memory_type_index: 0,
            device_uuid: [0; 16],
            driver_uuid: [0; 16],
        }
    }
    fn h(block: u32, offset: u64, size: u64) -> PoolHandle {
        PoolHandle { block, offset, size, generation: 1 }
    }

    #[test]
    fn bad_hand_offs_are_refused_with_the_reason() {
        let mut r = RemoteBlocks::default();
        r.insert_block(block(0, 4096), ()).unwrap();
        assert!(r.insert_block(block(0, 4096), ()).unwrap_err().to_string().contains("sent twice"));
        assert!(r.hold(&h(1, 0, 16)).unwrap_err().to_string().contains("never sent"));
        assert!(r.hold(&h(0, 4000, 200)).unwrap_err().to_string().contains("outside"));
        assert!(r.hold(&h(0, u64::MAX, 2)).unwrap_err().to_string().contains("outside"));
        r.hold(&h(0, 1024, 1024)).unwrap();
        assert!(r.hold(&h(0, 1500, 16)).unwrap_err().to_string().contains("overlaps"));
        assert!(r.hold(&h(0, 512, 1024)).unwrap_err().to_string().contains("overlaps"));
        r.hold(&h(0, 0, 1024)).unwrap();
        r.hold(&h(0, 2048, 2048)).unwrap();
        assert!(r.release(&h(0, 8, 8)).unwrap_err().to_string().contains("not held"));
        r.release(&h(0, 1024, 1024)).unwrap();
        r.hold(&h(0, 1500, 16)).unwrap();
        assert_eq!(r.held().count(), 3);
    }

    #[test]
    fn blocks_past_the_limits_are_refused_naming_the_limit() {
        let mut r = RemoteBlocks::with_limits(BlockLimits::default().max_blocks(2).max_bytes(10_000));
        r.insert_block(block(0, 4096), ()).unwrap();
        let e = r.insert_block(block(1, 8192), ()).unwrap_err().to_string();
        assert!(e.contains("12288 bytes") && e.contains("10000 bytes of blocks"), "{e}");
        r.insert_block(block(1, 4096), ()).unwrap();
        let e = r.insert_block(block(2, 1), ()).unwrap_err().to_string();
        assert!(e.contains("at most 2 blocks"), "{e}");
        assert!(RemoteBlocks::<()>::default().limits().max_blocks == 256);
    }
}
