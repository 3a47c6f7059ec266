//! A subscriber's live connection to one publisher life: the control socket, the publisher's
//! ring (read-only), this subscriber's own ring, the imported slots. Frames keep it alive.

use super::memory::SubSlot;
use super::options::Policy;
use super::ring::{PubRing, RingInfo, SubRing};
use super::wait::futex_wake;
use crate::transport::liveness::ProcessWatch;
use crate::transport::{Channel, Message};
use std::sync::atomic::{fence, Ordering};

pub(crate) struct Conn {
    pub(crate) channel: Channel,
    pub(crate) watch: ProcessWatch,
    pub(crate) ring: PubRing,
    pub(crate) info: RingInfo,
    pub(crate) mine: SubRing,
    pub(crate) slots: Vec<SubSlot>,
    pub(crate) policy: Policy,
}

impl Conn {
    /// This subscriber is done with `frame` in `slot` (idempotent: a frame released twice, or
    /// after a newer frame took the slot, changes nothing).
    pub(crate) fn release(&self, slot: u32, frame: u64) {
        let mine = &self.mine;
        if self.policy == Policy::Latest {
            let _ = mine.hold(slot).compare_exchange(frame + 1, 0, Ordering::SeqCst, Ordering::Relaxed);
        }
        let release = mine.release(slot);
        if release.load(Ordering::Relaxed) < frame + 1 {
            release.store(frame + 1, Ordering::Release);
        }
        mine.wake().fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.ring.publisher_waiting().load(Ordering::Relaxed) != 0 {
            futex_wake(mine.wake());
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.channel.send(&Message::Bye, &[]);
    }
}
