//! What the publisher's frame path and its control thread share: the ring, the slots, and the
//! subscribers joined now.

use super::memory::SlotMemory;
use super::options::StreamOptions;
use super::ring::{PubRing, SubRing};
use crate::transport::liveness::ProcessWatch;
use crate::transport::{Channel, Message};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// One joined subscriber, as the publisher knows it.
pub(crate) struct SubEntry {
    pub(crate) id: u64,
    pub(crate) pid: u32,
    pub(crate) channel: Channel,
    pub(crate) watch: ProcessWatch,
    pub(crate) ring: Arc<SubRing>,
    /// The first frame it takes (every): older frames are never waited for on its behalf.
    pub(crate) start: u64,
    /// Since when the frame path has waited for it (every), for the hold timeout.
    pub(crate) stalled_since: Option<Instant>,
}

impl SubEntry {
    /// Tells the subscriber why it is dropped (best effort: it may be gone).
    pub(crate) fn drop_with(self, why: &str) {
        let _ = self.channel.send(&Message::Verdict { ok: false, detail: why.to_owned() }, &[]);
    }
}

/// The publisher's state shared with its control thread.
pub(crate) struct PubShared {
    pub(crate) name: String,
    pub(crate) ring: PubRing,
    pub(crate) slots: Vec<Arc<SlotMemory>>,
    pub(crate) options: StreamOptions,
    pub(crate) subs: Mutex<Vec<SubEntry>>,
    /// The frame number the next `publish` carries (a joining subscriber starts there).
    pub(crate) next_publish: AtomicU64,
    pub(crate) next_id: AtomicU64,
    pub(crate) stop: AtomicBool,
}

impl PubShared {
    pub(crate) fn subs(&self) -> MutexGuard<'_, Vec<SubEntry>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes subscriber `id` (gone, or dropped); its slots are free from now on.
    pub(crate) fn remove(&self, id: u64) -> Option<SubEntry> {
        let mut subs = self.subs();
        let at = subs.iter().position(|s| s.id == id)?;
        Some(subs.swap_remove(at))
    }
}
