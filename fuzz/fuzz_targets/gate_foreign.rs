//! The gate of importers without a Vulkan device (`extmem::gate::check_foreign`: CUDA, GL):
//! any decoded or raw descriptor, any limits, a real memfd of any length, sealed or not. Never
//! a panic, and whatever it accepts is inside its allocation and backed by the file.
//!
//! Input: 36 bytes of limits (as `import_rules`), the memfd's length (u32) and whether it is
//! sealed, then a wire message whose `Share` descriptor is checked.
#![no_main]

use extmem::gate::{check_foreign, received::MIN_SEALS};
use extmem::rules::DeviceLimits;
use extmem::transport::Message;
use extmem::{HandleType, ResourceDesc};
use libfuzzer_sys::fuzz_target;
use rustix::fs::{MemfdFlags, SealFlags};
use std::os::fd::AsFd;

fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(d[i..i + 4].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 41 {
        return;
    }
    let limits = DeviceLimits {
        max_image_dimension_2d: u32_at(data, 0),
        max_image_dimension_3d: u32_at(data, 4),
        max_image_array_layers: u32_at(data, 8),
        max_framebuffer_width: u32_at(data, 0) >> 1,
        max_framebuffer_height: u32_at(data, 4) >> 1,
        max_memory_allocation_size: u64::from_le_bytes(data[12..20].try_into().unwrap()),
    };
    let len = (u32_at(data, 36) & 0x00ff_ffff) as u64;
    let Ok(Message::Share(desc)) = Message::decode(&data[41..]) else { return };
    let fd = rustix::fs::memfd_create("fuzz", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).expect("memfd");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    if data[40] & 1 == 1 {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW).expect("seal");
    }
    if let Ok(checked) = check_foreign(&desc, fd.as_fd(), &limits) {
        let d = checked.get();
        assert_eq!(*d, desc);
        assert!(d.allocation_size > 0 && d.allocation_size <= limits.max_memory_allocation_size, "{d:?}");
        assert!(d.offset < d.allocation_size, "{d:?}");
        if let ResourceDesc::Buffer(b) = d.resource {
            assert!(d.offset.checked_add(b.size).is_some_and(|e| e <= d.allocation_size), "{d:?}");
        }
        assert_ne!(d.handle_type, HandleType::DmaBuf, "a memfd accepted as a dma-buf");
        assert!(rustix::fs::fcntl_get_seals(&fd).unwrap().contains(MIN_SEALS), "an unsealed memfd accepted");
        assert!(len >= d.allocation_size, "a {len}-byte memfd accepted for {} bytes", d.allocation_size);
    }
});
