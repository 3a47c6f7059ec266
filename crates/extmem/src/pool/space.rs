//! Free space in one block: first fit over a sorted map of free ranges, merged on release.
//! Pure bookkeeping (no Vulkan), so that its rules are tested on their own.

use std::collections::BTreeMap;

/// The free ranges of a block of `size` bytes.
#[derive(Debug)]
pub(crate) struct BlockSpace {
    size: u64,
    /// Free ranges: offset -> length, never adjacent (merged), never empty.
    free: BTreeMap<u64, u64>,
}

impl BlockSpace {
    pub(crate) fn new(size: u64) -> BlockSpace {
        BlockSpace { size, free: BTreeMap::from([(0, size)]) }
    }

    /// `size` bytes at an offset that is a multiple of `align` (a power of two), first fit.
    pub(crate) fn allocate(&mut self, size: u64, align: u64) -> Option<u64> {
        debug_assert!(align.is_power_of_two() && size > 0);
        let (start, len, at) = self.free.iter().find_map(|(&start, &len)| {
            let at = start.checked_add(align - 1)? & !(align - 1);
            let end = at.checked_add(size)?;
            (end <= start + len).then_some((start, len, at))
        })?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        let end = at + size;
        if end < start + len {
            self.free.insert(end, start + len - end);
        }
        Some(at)
    }

    /// Gives `size` bytes at `offset` back (they were allocated), merging with neighbours.
    pub(crate) fn release(&mut self, offset: u64, size: u64) {
        let (mut start, mut len) = (offset, size);
        if let Some((&prev, &plen)) = self.free.range(..offset).next_back() {
            if prev + plen == offset {
                self.free.remove(&prev);
                start = prev;
                len += plen;
            }
        }
        if let Some(&next_len) = self.free.get(&(offset + size)) {
            self.free.remove(&(offset + size));
            len += next_len;
        }
        self.free.insert(start, len);
    }

    /// The block's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
    /// Free bytes in all.
    pub(crate) fn free_bytes(&self) -> u64 {
        self.free.values().sum()
    }
    /// The largest free range.
    pub(crate) fn largest_free(&self) -> u64 {
        self.free.values().copied().max().unwrap_or(0)
    }
    /// Whether nothing is allocated.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.free.get(&0) == Some(&self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::BlockSpace;

    #[test]
    fn first_fit_with_alignment_and_merging() {
        let mut s = BlockSpace::new(1024);
        assert_eq!(s.allocate(100, 1), Some(0));
        assert_eq!(s.allocate(100, 256), Some(256)); // 100..256 stays free
        assert_eq!(s.allocate(50, 1), Some(100));
        assert_eq!(s.free_bytes(), 1024 - 250);
        assert_eq!(s.allocate(2000, 1), None);
        s.release(256, 100);
        s.release(0, 100);
        s.release(100, 50);
        assert!(s.is_empty());
        assert_eq!(s.largest_free(), 1024);
    }

    #[test]
    fn a_full_block_refuses_and_refills() {
        let mut s = BlockSpace::new(4096);
        let offsets: Vec<u64> = (0..4).map(|_| s.allocate(1024, 1024).expect("room")).collect();
        assert_eq!(offsets, [0, 1024, 2048, 3072]);
        assert_eq!(s.allocate(1, 1), None);
        s.release(1024, 1024);
        assert_eq!(s.largest_free(), 1024);
        assert_eq!(s.allocate(1024, 1024), Some(1024));
    }
}
