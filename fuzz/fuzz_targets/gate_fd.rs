//! The gate's look at a received descriptor (`extmem::gate::received::check_fd`) on a real
//! memfd of any length and seals, against any claimed size and any learned export profile:
//! never a panic, and whatever it accepts can be mapped to the claimed size without a fault
//! (it carries the seals that stop its sender shrinking it, and it is long enough).
//!
//! Input: handle type, file length (u16), seals, claimed size and its shift, then a profile
//! (present, kind, seals, overhead).
#![no_main]

use extmem::fdkind::{ExportProfile, FdKind};
use extmem::gate::received::{check_fd, MIN_SEALS};
use extmem::HandleType;
use libfuzzer_sys::fuzz_target;
use rustix::fs::{MemfdFlags, SealFlags};
use std::os::fd::AsFd;

const KINDS: [FdKind; 5] =
    [FdKind::MemFile, FdKind::DmaBuf, FdKind::CharDevice { major: 195 }, FdKind::File, FdKind::Fifo];

fuzz_target!(|data: &[u8]| {
    if data.len() < 20 {
        return;
    }
    let handle_type = [HandleType::OpaqueFd, HandleType::DmaBuf, HandleType::HostAllocation][data[0] as usize % 3];
    let len = u16::from_le_bytes([data[1], data[2]]) as u64;
    let seals = SealFlags::from_bits_truncate(data[3] as u32 & 0x1f);
    let size = u64::from_le_bytes(data[4..12].try_into().unwrap()) >> (data[12] % 64);
    let profile = (data[13] & 1 == 1).then(|| ExportProfile {
        kind: KINDS[data[14] as usize % KINDS.len()],
        seals: (data[15] & 0x80 == 0).then(|| SealFlags::from_bits_truncate(data[15] as u32 & 0x1f)),
        overhead: u16::from_le_bytes([data[16], data[17]]) as u64,
    });
    let fd = rustix::fs::memfd_create("fuzz", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).expect("memfd");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    // Sealing can fail (F_SEAL_WRITE beside a writable mapping, ...): what the memfd has counts.
    let _ = rustix::fs::fcntl_add_seals(&fd, seals);
    let have = rustix::fs::fcntl_get_seals(&fd).expect("F_GET_SEALS");
    if check_fd(handle_type, fd.as_fd(), size, profile.as_ref()).is_ok() {
        assert_ne!(handle_type, HandleType::DmaBuf, "a memfd accepted as a dma-buf");
        let (want, overhead) = match (handle_type, profile) {
            (HandleType::OpaqueFd, Some(p)) => {
                assert_eq!(p.kind, FdKind::MemFile, "a memfd accepted where the driver exports {p:?}");
                (p.seals.unwrap_or(MIN_SEALS), p.overhead)
            }
            _ => (MIN_SEALS, 0),
        };
        assert!(have.contains(want), "accepted with seals {have:?}, {want:?} needed");
        assert!(len >= size.saturating_add(overhead), "a {len}-byte memfd accepted for {size} + {overhead} bytes");
    }
});
