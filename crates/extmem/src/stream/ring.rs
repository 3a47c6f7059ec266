//! The layout of a stream's two kinds of ring, each a sealed memfd written by one side only
//! (sealed by its writer, checked and mapped read-only by its reader).
//!
//! ```text
//! publisher's ring (one per stream; subscribers map it read-only)
//!   header   magic "EXTMSTRM" | version | slots | policy | memory | kind | format | width |
//!            height | bytes | pid | state (live/ended) | wake (futex) | publisher waiting |
//!            head = (frame + 1) << 8 | slot, 0 before the first frame | frames published
//!   entry s  seq (even: stable, odd: being written) | frame | ready value | CLOCK_MONOTONIC ns |
//!            metadata length | 256 bytes of metadata
//! subscriber's ring (one per subscriber; the publisher maps it read-only)
//!   header   magic "EXTMSUBR" | version | slots | pid | wake (futex) | sleeping | cursor
//!   slot s   hold (frame + 1 held now, 0: none) | release (frame + 1 released last)
//! ```
//! A frame's ready value is its number + 1 (the publisher's timeline: written on the host once
//! the frame's work is done). Readers copy each field once and check it: see
//! [`crate::stream::Subscriber`] and [`crate::stream::Publisher`].

use super::shm::ShmMap;
use crate::error::{Error, Result};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// The most slots a stream has (the head packs the slot into 8 bits).
pub const MAX_SLOTS: u32 = 64;
/// The most metadata bytes a frame carries.
pub const MAX_METADATA: usize = 256;
const VERSION: u32 = 1;
const PUB_MAGIC: u64 = u64::from_le_bytes(*b"EXTMSTRM");
const SUB_MAGIC: u64 = u64::from_le_bytes(*b"EXTMSUBR");
const ENTRIES: usize = 128;
const ENTRY: usize = 320;
const SUB_SLOTS: usize = 64;
const PAGE: usize = 4096;
// An entry's fields and metadata fit its bytes.
const _: () = assert!(40 + MAX_METADATA <= ENTRY);

/// What the publisher's ring header says about the stream (written before the ring is sealed;
/// a reader copies it once at join and checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingInfo {
    /// Slots in the ring.
    pub slots: u32,
    /// 0: every, 1: latest.
    pub policy: u32,
    /// 1: device memory, 2: host memory.
    pub memory: u32,
    /// 1: image, 2: buffer.
    pub kind: u32,
    /// The image's `VkFormat` (or, for an image-shaped host buffer, the texels' format).
    pub format: i32,
    /// Width in texels (0 for a plain buffer).
    pub width: u32,
    /// Height in texels (0 for a plain buffer).
    pub height: u32,
    /// Bytes of a frame's data (host memory: the bytes a CPU reader sees).
    pub bytes: u64,
    /// The publisher's pid.
    pub pid: u32,
}

/// One ring entry, as read (a consistent copy).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) frame: u64,
    pub(crate) ready: u64,
    pub(crate) timestamp_ns: u64,
    pub(crate) meta_len: u32,
    pub(crate) meta: [u8; MAX_METADATA],
}

/// Byte length of the publisher's ring for `slots` slots.
pub(crate) fn pub_len(slots: u32) -> usize {
    (ENTRIES + slots as usize * ENTRY).next_multiple_of(PAGE)
}

/// Byte length of a subscriber's ring for `slots` slots.
pub(crate) fn sub_len(slots: u32) -> usize {
    (SUB_SLOTS + slots as usize * 16).next_multiple_of(PAGE)
}

/// The publisher's ring.
pub(crate) struct PubRing {
    pub(crate) map: ShmMap,
    pub(crate) slots: u32,
}

impl PubRing {
    /// A new ring with `info` in its header, sealed.
    pub(crate) fn create(info: &RingInfo) -> Result<PubRing> {
        let map = ShmMap::create_sealed("extmem-stream", pub_len(info.slots))?;
        let put = |o: usize, v: u32| map.u32(o).store(v, Ordering::Relaxed);
        map.u64(0).store(PUB_MAGIC, Ordering::Relaxed);
        put(8, VERSION);
        put(12, info.slots);
        put(16, info.policy);
        put(20, info.memory);
        put(24, info.kind);
        put(28, info.format as u32);
        put(32, info.width);
        put(36, info.height);
        map.u64(40).store(info.bytes, Ordering::Relaxed);
        put(48, info.pid);
        fence(Ordering::Release);
        Ok(PubRing { map, slots: info.slots })
    }

    /// Checks and maps a publisher's ring a subscriber received; its header, checked.
    pub(crate) fn open(fd: std::os::fd::OwnedFd, len: u64) -> Result<(PubRing, RingInfo)> {
        if len > pub_len(MAX_SLOTS) as u64 || len == 0 {
            return Err(Error::Protocol(format!("a stream ring of {len} bytes (at most {})", pub_len(MAX_SLOTS))));
        }
        let map = ShmMap::open_read_only(fd, len as usize, "publisher's stream ring")?;
        let get = |o: usize| map.u32(o).load(Ordering::Relaxed);
        if map.u64(0).load(Ordering::Relaxed) != PUB_MAGIC || get(8) != VERSION {
            return Err(Error::Protocol("the publisher's ring has the wrong magic or version".into()));
        }
        let info = RingInfo {
            slots: get(12),
            policy: get(16),
            memory: get(20),
            kind: get(24),
            format: get(28) as i32,
            width: get(32),
            height: get(36),
            bytes: map.u64(40).load(Ordering::Relaxed),
            pid: get(48),
        };
        if info.slots == 0 || info.slots > MAX_SLOTS || pub_len(info.slots) != map.len() {
            return Err(Error::Protocol(format!(
                "the publisher's ring says {} slots in {} bytes (1..={MAX_SLOTS} slots, {} bytes for that count)",
                info.slots,
                map.len(),
                pub_len(info.slots.clamp(1, MAX_SLOTS))
            )));
        }
        if info.policy > 1 || !(1..=2).contains(&info.memory) || !(1..=2).contains(&info.kind) || info.bytes == 0 {
            return Err(Error::Protocol(format!(
                "the publisher's ring header is malformed (policy {}, memory {}, kind {}, {} bytes)",
                info.policy, info.memory, info.kind, info.bytes
            )));
        }
        Ok((PubRing { map, slots: info.slots }, info))
    }

    fn entry(&self, slot: u32) -> usize {
        assert!(slot < self.slots);
        ENTRIES + slot as usize * ENTRY
    }

    pub(crate) fn state(&self) -> &AtomicU32 {
        self.map.u32(52)
    }
    pub(crate) fn wake(&self) -> &AtomicU32 {
        self.map.u32(56)
    }
    pub(crate) fn publisher_waiting(&self) -> &AtomicU32 {
        self.map.u32(60)
    }
    pub(crate) fn head(&self) -> &AtomicU64 {
        self.map.u64(64)
    }
    pub(crate) fn published(&self) -> &AtomicU64 {
        self.map.u64(72)
    }
    pub(crate) fn seq(&self, slot: u32) -> &AtomicU64 {
        self.map.u64(self.entry(slot))
    }

    /// Marks `slot` as being written (odd seq); the odd value.
    pub(crate) fn invalidate(&self, slot: u32) -> u64 {
        let seq = self.seq(slot);
        let v = seq.load(Ordering::Relaxed) | 1;
        seq.store(v, Ordering::SeqCst);
        v
    }

    /// Marks `slot` stable again without changing it.
    pub(crate) fn restore(&self, slot: u32) {
        let seq = self.seq(slot);
        let v = seq.load(Ordering::Relaxed);
        if v & 1 == 1 {
            seq.store(v + 1, Ordering::Release);
        }
    }

    /// Writes entry `slot` (a seqlock write: odd, fields, even).
    pub(crate) fn write_entry(&self, slot: u32, frame: u64, ready: u64, timestamp_ns: u64, meta: &[u8]) {
        let e = self.entry(slot);
        let odd = self.invalidate(slot);
        fence(Ordering::Release);
        let m = &self.map;
        m.u64(e + 8).store(frame, Ordering::Relaxed);
        m.u64(e + 16).store(ready, Ordering::Relaxed);
        m.u64(e + 24).store(timestamp_ns, Ordering::Relaxed);
        m.u64(e + 32).store(meta.len() as u64, Ordering::Relaxed);
        for (i, chunk) in meta.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            m.u64(e + 40 + 8 * i).store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
        self.seq(slot).store(odd + 1, Ordering::Release);
    }

    /// A consistent copy of entry `slot`, or `None` while it is being written.
    pub(crate) fn read_entry(&self, slot: u32) -> Option<Entry> {
        let e = self.entry(slot);
        let m = &self.map;
        let seq = m.u64(e).load(Ordering::Acquire);
        if seq & 1 == 1 {
            return None;
        }
        let frame = m.u64(e + 8).load(Ordering::Relaxed);
        let ready = m.u64(e + 16).load(Ordering::Relaxed);
        let timestamp_ns = m.u64(e + 24).load(Ordering::Relaxed);
        let meta_len = m.u64(e + 32).load(Ordering::Relaxed);
        let mut meta = [0u8; MAX_METADATA];
        for (i, chunk) in meta.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&m.u64(e + 40 + 8 * i).load(Ordering::Relaxed).to_le_bytes());
        }
        fence(Ordering::Acquire);
        if m.u64(e).load(Ordering::Relaxed) != seq {
            return None;
        }
        let meta_len = u32::try_from(meta_len).unwrap_or(u32::MAX);
        Some(Entry { frame, ready, timestamp_ns, meta_len, meta })
    }
}

/// Splits a head value into (frame, slot); `None` before the first frame.
pub(crate) fn split_head(head: u64) -> Option<(u64, u32)> {
    (head >> 8).checked_sub(1).map(|frame| (frame, (head & 0xff) as u32))
}

/// The head value of `frame` in `slot`.
pub(crate) fn make_head(frame: u64, slot: u32) -> u64 {
    ((frame + 1) << 8) | slot as u64
}

/// A subscriber's ring.
pub(crate) struct SubRing {
    pub(crate) map: ShmMap,
    pub(crate) slots: u32,
}

impl SubRing {
    /// A new subscriber ring, sealed.
    pub(crate) fn create(slots: u32) -> Result<SubRing> {
        let map = ShmMap::create_sealed("extmem-stream-subscriber", sub_len(slots))?;
        map.u64(0).store(SUB_MAGIC, Ordering::Relaxed);
        map.u32(8).store(VERSION, Ordering::Relaxed);
        map.u32(12).store(slots, Ordering::Relaxed);
        map.u32(16).store(std::process::id(), Ordering::Relaxed);
        fence(Ordering::Release);
        Ok(SubRing { map, slots })
    }

    /// Checks and maps a subscriber's ring the publisher received (for a `slots`-slot stream).
    pub(crate) fn open(fd: std::os::fd::OwnedFd, len: u64, slots: u32) -> Result<SubRing> {
        if len != sub_len(slots) as u64 {
            return Err(Error::Protocol(format!(
                "a subscriber ring of {len} bytes; {} for {slots} slots",
                sub_len(slots)
            )));
        }
        let map = ShmMap::open_read_only(fd, len as usize, "subscriber's stream ring")?;
        if map.u64(0).load(Ordering::Relaxed) != SUB_MAGIC
            || map.u32(8).load(Ordering::Relaxed) != VERSION
            || map.u32(12).load(Ordering::Relaxed) != slots
        {
            return Err(Error::Protocol("the subscriber's ring has the wrong magic, version or slot count".into()));
        }
        Ok(SubRing { map, slots })
    }

    pub(crate) fn wake(&self) -> &AtomicU32 {
        self.map.u32(20)
    }
    pub(crate) fn sleeping(&self) -> &AtomicU32 {
        self.map.u32(24)
    }
    pub(crate) fn cursor(&self) -> &AtomicU64 {
        self.map.u64(32)
    }
    pub(crate) fn hold(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.map.u64(SUB_SLOTS + 16 * slot as usize)
    }
    pub(crate) fn release(&self, slot: u32) -> &AtomicU64 {
        assert!(slot < self.slots);
        self.map.u64(SUB_SLOTS + 16 * slot as usize + 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_and_layouts_fit() {
        assert_eq!(split_head(0), None);
        for (f, s) in [(0, 0), (7, 3), (1 << 40, 63)] {
            assert_eq!(split_head(make_head(f, s)), Some((f, s)));
        }
        assert_eq!(pub_len(1), 4096);
        assert!(sub_len(MAX_SLOTS) >= SUB_SLOTS + 16 * MAX_SLOTS as usize);
    }
}
