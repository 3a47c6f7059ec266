//! The consumer's view of a pool: the blocks it was sent (each imported once, kept) and the
//! sub-allocations it holds. Every hand-off is checked against both before any resource is
//! made: a block never sent, a range outside its block, a range overlapping one still held,
//! a block sent twice. Generic over what an imported block is (Vulkan memory, a CUDA mapping).

use crate::error::{Error, Result};
use crate::pool_desc::{BlockDesc, PoolHandle};
use std::collections::{BTreeMap, HashMap};

/// Imported blocks (`T` each) and the sub-allocations held in them.
#[derive(Debug)]
pub struct RemoteBlocks<T> {
    blocks: HashMap<u32, (BlockDesc, T)>,
    held: BTreeMap<(u32, u64), PoolHandle>,
}

impl<T> Default for RemoteBlocks<T> {
    fn default() -> Self {
        RemoteBlocks { blocks: HashMap::new(), held: BTreeMap::new() }
    }
}

impl<T> RemoteBlocks<T> {
    /// Refuses a block that was already sent (each block is imported once).
    pub fn check_new_block(&self, desc: &BlockDesc) -> Result<()> {
        if self.blocks.contains_key(&desc.block) {
            return Err(Error::Pool(format!("block {} was sent twice: a block is imported once and kept", desc.block)));
        }
        Ok(())
    }

    /// Keeps an imported block.
    pub fn insert_block(&mut self, desc: BlockDesc, imported: T) -> Result<()> {
        self.check_new_block(&desc)?;
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
        self.blocks.drain().map(|(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteBlocks;
    use crate::pool_desc::{BlockDesc, PoolHandle};
    use crate::HandleType;

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
}
