//! One direction of a stream's shared memory: a memfd written by one side only.
//!
//! The writer makes it ([`ShmMap::create_sealed`]): `memfd_create`, its size, a read-write
//! shared mapping, and then the seals `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
//! F_SEAL_SEAL`, so that nobody can change its size or map it writable again (the writer's own
//! mapping, made before, stays writable). The reader ([`ShmMap::open_read_only`]) refuses a
//! descriptor that is not a memfd, lacks any of the seals, or has another size, and maps it
//! read-only. Fields are 32- and 64-bit atomics at fixed offsets; every value read is a copy
//! the caller checks before use.

use crate::error::{Error, IoResultExt, Result};
use crate::handle::HandleType;
use rustix::fs::SealFlags;
use rustix::mm::{MapFlags, ProtFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// The seals on a ring's memfd.
pub(crate) const RING_SEALS: SealFlags =
    SealFlags::SHRINK.union(SealFlags::GROW).union(SealFlags::FUTURE_WRITE).union(SealFlags::SEAL);

/// A shared mapping of a whole memfd; unmapped on drop.
pub(crate) struct ShmMap {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is shared memory accessed only through atomics.
unsafe impl Send for ShmMap {}
// SAFETY: as above.
unsafe impl Sync for ShmMap {}

impl ShmMap {
    /// A new memfd of `len` bytes (zeroed), mapped read-write, then sealed.
    pub(crate) fn create_sealed(name: &str, len: usize) -> Result<ShmMap> {
        use rustix::fs::MemfdFlags;
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .io(|| "memfd_create (stream ring)".into())?;
        rustix::fs::ftruncate(&fd, len as u64).io(|| format!("sizing the stream ring to {len} bytes"))?;
        let map = Self::map(fd, len, true)?;
        rustix::fs::fcntl_add_seals(&map.fd, RING_SEALS).io(|| {
            "sealing the stream ring (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)".into()
        })?;
        Ok(map)
    }

    /// Maps a ring the other side wrote, read-only, after checking that it is a memfd of
    /// exactly `len` bytes with every seal of [`RING_SEALS`]. `what` names it in errors.
    pub(crate) fn open_read_only(fd: OwnedFd, len: usize, what: &str) -> Result<ShmMap> {
        let kind = crate::fdkind::classify(fd.as_fd())?;
        crate::fdkind::check_kind(HandleType::HostAllocation, kind, None)
            .map_err(|e| Error::Protocol(format!("{what}: {e}")))?;
        let seals = rustix::fs::fcntl_get_seals(&fd).io(|| format!("reading the seals of the {what}"))?;
        if !seals.contains(RING_SEALS) {
            return Err(Error::Protocol(format!(
                "the {what} is not sealed (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL; it has \
                 {seals:?}): its writer could resize it or others could write it; refused"
            )));
        }
        let size = rustix::fs::fstat(&fd).io(|| format!("fstat of the {what}"))?.st_size;
        if size as u64 != len as u64 {
            return Err(Error::Protocol(format!("the {what} holds {size} bytes, its layout needs {len}")));
        }
        Self::map(fd, len, false)
    }

    fn map(fd: OwnedFd, len: usize, writable: bool) -> Result<ShmMap> {
        let prot = if writable { ProtFlags::READ | ProtFlags::WRITE } else { ProtFlags::READ };
        // SAFETY: a fresh shared mapping of the whole file, unmapped on drop.
        let ptr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, &fd, 0) }
            .io(|| format!("mmap of {len} bytes of a stream ring"))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| Error::Protocol("mmap returned null".into()))?;
        Ok(ShmMap { ptr, len, fd })
    }

    /// The memfd (to send a duplicate to the reader).
    pub(crate) fn dup_fd(&self) -> Result<OwnedFd> {
        rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).io(|| "duplicating a stream ring's memfd".into())
    }

    /// The mapped length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The 64-bit field at byte `offset` (8-aligned, inside the mapping: offsets come from the
    /// layout and the checked slot count, never from the shared memory).
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.len, "ring offset {offset} outside {} bytes", self.len);
        // SAFETY: in bounds and aligned (checked above; the mapping is page-aligned); the
        // mapping lives as long as `self`; shared memory is only accessed atomically.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// The 32-bit field at byte `offset` (4-aligned, inside the mapping).
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len, "ring offset {offset} outside {} bytes", self.len);
        // SAFETY: as in `u64`.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }
}

impl Drop for ShmMap {
    fn drop(&mut self) {
        // SAFETY: mapped by `map`; no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A read-only mapping of a slot's host memory (a subscriber with no Vulkan device).
pub(crate) struct ReadOnlyBytes {
    ptr: NonNull<u8>,
    len: usize,
    _fd: OwnedFd,
}

// SAFETY: read-only shared memory; readers copy out of it.
unsafe impl Send for ReadOnlyBytes {}
// SAFETY: as above.
unsafe impl Sync for ReadOnlyBytes {}

impl ReadOnlyBytes {
    /// Maps the first `len` bytes of a sealed memfd (see [`crate::host::check_received`]).
    pub(crate) fn open(fd: OwnedFd, len: usize) -> Result<ReadOnlyBytes> {
        crate::host::check_received(&fd, len as u64)?;
        // SAFETY: a fresh read-only shared mapping, unmapped on drop.
        let ptr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, &fd, 0) }
            .io(|| format!("mmap of {len} bytes of a stream slot"))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| Error::Protocol("mmap returned null".into()))?;
        Ok(ReadOnlyBytes { ptr, len, _fd: fd })
    }

    /// The first byte and the length.
    pub(crate) fn raw(&self) -> (*const u8, usize) {
        (self.ptr.as_ptr(), self.len)
    }
}

impl Drop for ReadOnlyBytes {
    fn drop(&mut self) {
        // SAFETY: mapped by `open`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
