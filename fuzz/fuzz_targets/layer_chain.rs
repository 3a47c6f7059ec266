//! The layer's `pNext` rewriting: a chain of structures of any types (the ones the layer knows
//! and others), one node removed. The copy must hold the other nodes in order with their bytes,
//! the application's chain must stay untouched, and an unknown type in front of the removed
//! node must make it refuse rather than guess a size.
#![no_main]

use ash::vk;
use libfuzzer_sys::fuzz_target;
use std::ffi::c_void;
use VkLayer_extmem::fuzzing::{nodes, ChainWithout};

/// sTypes to draw from: those the layer copies, NV ones it removes, and ones it does not know.
const TYPES: [vk::StructureType; 12] = [
    vk::StructureType::EXTERNAL_MEMORY_IMAGE_CREATE_INFO_NV,
    vk::StructureType::EXPORT_MEMORY_ALLOCATE_INFO_NV,
    vk::StructureType::EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
    vk::StructureType::EXPORT_MEMORY_ALLOCATE_INFO,
    vk::StructureType::MEMORY_ALLOCATE_FLAGS_INFO,
    vk::StructureType::MEMORY_DEDICATED_ALLOCATE_INFO,
    vk::StructureType::IMPORT_MEMORY_FD_INFO_KHR,
    vk::StructureType::IMAGE_FORMAT_LIST_CREATE_INFO,
    vk::StructureType::MEMORY_PRIORITY_ALLOCATE_INFO_EXT,
    vk::StructureType::IMAGE_DRM_FORMAT_MODIFIER_LIST_CREATE_INFO_EXT,
    vk::StructureType::PHYSICAL_DEVICE_FEATURES_2,
    vk::StructureType::from_raw(0x7fff_0000),
];
/// Bytes per node: more than any structure the layer copies.
const NODE: usize = 256;
const KNOWN: usize = 10;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let count = rest.len().min(16 * 9) / 9;
    if count == 0 {
        return;
    }
    // Each node: its type, then 8 bytes spread over its body.
    let mut storage: Vec<Box<[u64; NODE / 8]>> = (0..count).map(|_| Box::new([0u64; NODE / 8])).collect();
    let mut kinds = Vec::with_capacity(count);
    for (i, node) in storage.iter_mut().enumerate() {
        let b = &rest[i * 9..i * 9 + 9];
        let kind = b[0] as usize % TYPES.len();
        kinds.push(kind);
        let fill = u64::from_le_bytes(b[1..9].try_into().unwrap());
        for word in node.iter_mut().skip(2) {
            *word = fill;
        }
        let base = node.as_mut_ptr() as *mut vk::BaseOutStructure;
        // SAFETY: the storage is larger than the header and 8-byte aligned.
        unsafe { (*base).s_type = TYPES[kind] };
    }
    for i in (0..count).rev() {
        let next = storage.get(i + 1).map_or(std::ptr::null_mut(), |n| n.as_ptr() as *mut vk::BaseOutStructure);
        // SAFETY: as above.
        unsafe { (*(storage[i].as_mut_ptr() as *mut vk::BaseOutStructure)).p_next = next };
    }
    let before: Vec<[u64; NODE / 8]> = storage.iter().map(|n| **n).collect();
    let remove = pick as usize % count;
    let head = storage[0].as_ptr() as *const c_void;
    let target = storage[remove].as_ptr() as *const vk::BaseInStructure;
    // SAFETY: a valid chain of `count` nodes that contains `target` and outlives the copy.
    let chain = unsafe { ChainWithout::new(head, target) };
    let unknown_in_front = kinds[..remove].iter().any(|&k| k >= KNOWN);
    match chain {
        None => assert!(unknown_in_front, "refused a chain whose nodes in front are all known: {kinds:?}"),
        Some(chain) => {
            assert!(!unknown_in_front, "copied a node of unknown size: {kinds:?}");
            // SAFETY: the copy's nodes and the shared tail are alive.
            let seen: Vec<vk::StructureType> = unsafe { nodes(chain.head()) }.map(|n| unsafe { (*n).s_type }).collect();
            let want: Vec<vk::StructureType> =
                kinds.iter().enumerate().filter(|&(i, _)| i != remove).map(|(_, &k)| TYPES[k]).collect();
            assert_eq!(seen, want);
            // Every kept node carries its first body word (all copied types are at least 24 bytes).
            let kept: Vec<usize> = (0..count).filter(|&i| i != remove).collect();
            // SAFETY: as above.
            for (n, &i) in unsafe { nodes(chain.head()) }.zip(&kept) {
                // SAFETY: each node has at least 24 readable bytes.
                let body = unsafe { *(n as *const u64).add(2) };
                assert_eq!(body, before[i][2], "node {i}'s bytes changed in the copy");
            }
        }
    }
    for (node, old) in storage.iter().zip(&before) {
        assert_eq!(**node, *old, "the application's chain was written");
    }
});
