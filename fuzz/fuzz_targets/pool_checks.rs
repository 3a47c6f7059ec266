//! The consumer's checks of pooled hand-offs (`extmem::pool::RemoteBlocks`) under any sequence
//! of blocks, holds and releases: never a panic, and whatever it accepts keeps its promises:
//! every held range lies inside a block that was sent, and no two held ranges overlap.
//!
//! The consumer's limits are fuzzed too (first two bytes: at most 0..=4 blocks, at most a
//! power of two of bytes): a block past them is refused, and the blocks kept never exceed them.
//!
//! Input: two bytes of limits, then 28-byte operations (kind, block, offset, size, generation, two shifts that bring the
//! numbers near each other so that overlaps and edges are reached).
#![no_main]

use extmem::pool::{BlockDesc, BlockLimits, PoolHandle, RemoteBlocks};
use extmem::HandleType;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fn u64_at(d: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(d[i..i + 8].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((limits, data)) = data.split_first_chunk::<2>() else { return };
    let limits = BlockLimits::default().max_blocks(limits[0] as usize % 5).max_bytes(1u64 << (limits[1] % 64));
    let mut blocks: RemoteBlocks<()> = RemoteBlocks::with_limits(limits);
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for op in data.chunks_exact(28) {
        let block = (op[1] % 4) as u32;
        let offset = u64_at(op, 2) >> (op[26] % 64);
        let size = u64_at(op, 10) >> (op[27] % 64);
        let handle = PoolHandle { block, offset, size, generation: u64_at(op, 18) };
        match op[0] % 3 {
            0 => {
                let desc = BlockDesc {
                    block,
                    size: size.max(1),
                    handle_type: HandleType::OpaqueFd,
                    memory_type_index: 0,
                    device_uuid: [0; 16],
                    driver_uuid: [0; 16],
                };
                let known = sizes.contains_key(&block);
                let total: u64 = sizes.values().sum();
                let fits = sizes.len() < limits.max_blocks && total.saturating_add(desc.size) <= limits.max_bytes;
                let ok = blocks.insert_block(desc, ()).is_ok();
                assert_eq!(ok, !known && fits, "block {block}: sent again {known}, within the limits {fits}");
                if ok {
                    sizes.insert(block, desc.size);
                }
            }
            1 => {
                let _ = blocks.hold(&handle);
            }
            _ => {
                let was_held = blocks.held().any(|h| *h == handle);
                assert_eq!(blocks.release(&handle).is_ok(), was_held, "release of {handle}");
            }
        }
        let mut held: Vec<PoolHandle> = blocks.held().copied().collect();
        held.sort();
        for h in &held {
            let block_size = sizes.get(&h.block).copied();
            assert!(block_size.is_some_and(|s| h.size > 0 && h.offset.checked_add(h.size).is_some_and(|e| e <= s)), "{h} outside its block");
        }
        for pair in held.windows(2) {
            if pair[0].block == pair[1].block {
                assert!(pair[0].end() <= pair[1].offset, "{} overlaps {}", pair[0], pair[1]);
            }
        }
    }
});
