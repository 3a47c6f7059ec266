//! Test helpers (cargo feature `testing`): a publisher that breaks its own ring on purpose,
//! as a hostile publisher would, so that subscribers' checks can be shown to refuse it.

use super::publisher::Publisher;
use super::ring::make_head;
use std::sync::atomic::Ordering;

/// Writes forged values into a publisher's ring.
pub struct Forge<'a> {
    publisher: &'a Publisher,
}

impl Publisher {
    /// The forger of this publisher's ring (tests only).
    pub fn forge(&self) -> Forge<'_> {
        Forge { publisher: self }
    }
}

impl Forge<'_> {
    /// Sets the head to say frame `frame` is in slot `slot` (any values).
    pub fn head(&self, frame: u64, slot: u32) {
        self.publisher.shared().ring.head().store(make_head(frame, slot), Ordering::Release);
        self.wake();
    }
    /// Sets the raw head word.
    pub fn raw_head(&self, head: u64) {
        self.publisher.shared().ring.head().store(head, Ordering::Release);
        self.wake();
    }
    /// Rewrites entry `slot` (a consistent write) with any values.
    pub fn entry(&self, slot: u32, frame: u64, ready: u64, metadata_len: u64) {
        let ring = &self.publisher.shared().ring;
        ring.write_entry(slot, frame, ready, 0, &[]);
        // The metadata length field, past the write's own (entry + 32).
        let e = 128 + slot as usize * 320;
        let seq = ring.invalidate(slot);
        ring.map.u64(e + 32).store(metadata_len, Ordering::Relaxed);
        ring.seq(slot).store(seq + 1, Ordering::Release);
        self.wake();
    }
    /// Leaves entry `slot` mid-write (odd sequence) for good.
    pub fn stuck(&self, slot: u32) {
        self.publisher.shared().ring.invalidate(slot);
    }
    fn wake(&self) {
        let ring = &self.publisher.shared().ring;
        ring.wake().fetch_add(1, Ordering::Release);
        super::wait::futex_wake(ring.wake());
    }
}
