//! Forged memory: memfds that look like this driver's opaque export (lavapipe's is a memfd
//! whose header holds the file size, the alignment and the driver's id), but that are unsealed,
//! smaller than they claim, or shrunk after the import. Where the export is no memfd (NVIDIA's
//! is a character device, which cannot be read), the forgeries are memfds of zeros, which the
//! importer refuses for their kind.

use rustix::fs::{MemfdFlags, SealFlags};
use std::os::fd::{AsFd, OwnedFd};

/// The driver's own export's first 32 bytes (its header on lavapipe; zeros where the export
/// cannot be read).
pub fn header_of(real: impl AsFd) -> [u8; 32] {
    let mut h = [0u8; 32];
    let _ = rustix::io::pread(real.as_fd(), &mut h, 0);
    h
}

/// A memfd of `file_len` bytes whose header claims `claimed_len` bytes, sealed as the driver
/// seals its exports when `sealed`.
pub fn memfd_claiming(header: [u8; 32], file_len: u64, claimed_len: u64, sealed: bool) -> OwnedFd {
    let fd = rustix::fs::memfd_create("forged", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).expect("memfd");
    rustix::fs::ftruncate(&fd, file_len).expect("ftruncate");
    let mut h = header;
    h[..8].copy_from_slice(&claimed_len.to_le_bytes());
    rustix::io::pwrite(&fd, &h, 0).expect("write the header");
    if sealed {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW).expect("seal");
    }
    fd
}

/// An unsealed copy of `real`'s bytes (an export that imports, but can be shrunk later).
pub fn unsealed_copy(real: impl AsFd) -> OwnedFd {
    let len = (rustix::fs::fstat(real.as_fd()).expect("fstat").st_size as u64).max(1 << 20);
    let fd = rustix::fs::memfd_create("copy", MemfdFlags::CLOEXEC).expect("memfd");
    rustix::fs::ftruncate(&fd, len).expect("ftruncate");
    let mut buf = vec![0u8; len as usize];
    if rustix::io::pread(real.as_fd(), &mut buf, 0).is_ok() {
        rustix::io::pwrite(&fd, &buf, 0).expect("write the copy");
    }
    fd
}

/// The bytes a forged file of `size` bytes of memory needs on lavapipe (its header and a page).
pub fn file_len(real: impl AsFd, real_size: u64, size: u64) -> u64 {
    let len = rustix::fs::fstat(real.as_fd()).expect("fstat").st_size as u64;
    size + len.saturating_sub(real_size)
}
