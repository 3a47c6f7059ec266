//! The stream's control plane over the existing socket machinery (a `SOCK_SEQPACKET` socket
//! per stream name in the private socket folder, `SO_PEERCRED`, checked descriptors). No new
//! message types: a join is made of wire-v2 messages, in this order:
//!
//! ```text
//! publisher                                          subscriber
//! HostBytes(len) + the publisher's ring memfd    ->  check seals and size, map read-only
//! Share(descriptor) + fd, once per slot          ->  check against the ring's header, import
//!                                                <-  HostBytes(len) + its own ring memfd
//!                                                    (or Verdict ok=false: it refuses, saying why)
//! FrameReady(first frame it takes)               ->  joined
//!   (or Verdict ok=false: refused, with the reason; for latest, the free-slot count)
//! ... frames go through the rings, no message per frame ...
//! Verdict ok=false (dropped: reason) / Bye (clean end)  <->  Bye (leaves)
//! ```
//! The publisher's control thread accepts joins, and notices a subscriber that leaves, hangs
//! up or dies (its pidfd) within [`POLL`]: its slots are free from then on.

use super::memory::SubSlot;
use super::options::Policy;
use super::ring::{self, PubRing, RingInfo, SubRing};
use super::state::{PubShared, SubEntry};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::transport::liveness::ProcessWatch;
use crate::transport::{Channel, Listener, Message};
use rustix::event::{PollFd, PollFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the control thread looks at its subscribers' processes.
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// The longest a join's steps may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The publisher's control thread: runs until `shared.stop`.
pub(crate) fn serve(shared: Arc<PubShared>, listener: Listener) {
    while !shared.stop.load(Ordering::Acquire) {
        // Duplicates of the subscribers' sockets, so that the lock is not held while sleeping.
        let (ids, dups): (Vec<u64>, Vec<OwnedFd>) = shared
            .subs()
            .iter()
            .filter_map(|s| Some((s.id, rustix::io::fcntl_dupfd_cloexec(s.channel.as_fd(), 0).ok()?)))
            .unzip();
        let mut fds = vec![PollFd::new(&listener, PollFlags::IN)];
        fds.extend(dups.iter().map(|d| PollFd::new(d, PollFlags::IN)));
        let ts = rustix::event::Timespec { tv_sec: 0, tv_nsec: POLL.as_nanos() as i64 };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let readable: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        drop(dups);
        for (id, r) in ids.iter().zip(&readable[1..]) {
            if *r {
                on_message(&shared, *id);
            }
        }
        let dead: Vec<u64> = shared.subs().iter().filter(|s| s.watch.exited()).map(|s| s.id).collect();
        for id in dead {
            shared.remove(id);
        }
        if readable[0] {
            accept_one(&shared, &listener);
        }
    }
}

fn accept_one(shared: &Arc<PubShared>, listener: &Listener) {
    let Ok(mut channel) = listener.accept(Duration::ZERO) else { return };
    channel.set_timeout(JOIN_TIMEOUT);
    if let Err(e) = admit(shared, channel) {
        // The subscriber was told (or is gone); nothing to keep.
        let _ = e;
    }
}

/// Runs a join from the publisher's side; the subscriber is in the list on success.
fn admit(shared: &Arc<PubShared>, channel: Channel) -> Result<()> {
    let pid = channel.peer_pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    let watch = ProcessWatch::new(pid)?;
    let ring_fd = shared.ring.map.dup_fd()?;
    channel.send(&Message::HostBytes { len: shared.ring.map.len() as u64 }, &[ring_fd.as_fd()])?;
    drop(ring_fd);
    for slot in &shared.slots {
        let (desc, fd) = slot.export()?;
        channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    }
    let ring = match channel.recv()? {
        (Message::HostBytes { len }, mut fds) => {
            SubRing::open(fds.pop().expect("checked by recv"), len, shared.ring.slots)
        }
        (Message::Verdict { ok: false, detail }, _) => {
            return Err(Error::Peer(format!("the subscriber refused the stream: {detail}")))
        }
        (other, _) => Err(Error::Protocol(format!("{} where a subscriber's ring was due", other.name()))),
    };
    let ring = match ring {
        Ok(r) => r,
        Err(e) => {
            let _ = channel.send(&Message::Verdict { ok: false, detail: e.to_string() }, &[]);
            return Err(e);
        }
    };
    let mut subs = shared.subs();
    if shared.options.policy == Policy::Latest {
        let free = shared.ring.slots as i64 - subs.len() as i64 - 1;
        if free < 2 {
            let why = format!(
                "stream {:?} (latest, {} slots) has {} subscriber(s): one more would leave {free} free slot(s), \
                 it needs 2 (publish with more slots)",
                shared.name,
                shared.ring.slots,
                subs.len()
            );
            let _ = channel.send(&Message::Verdict { ok: false, detail: why.clone() }, &[]);
            return Err(Error::Peer(why));
        }
    }
    let start = shared.next_publish.load(Ordering::Acquire);
    channel.send(&Message::FrameReady { frame: start }, &[])?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    subs.push(SubEntry { id, pid, channel, watch, ring: Arc::new(ring), start, stalled_since: None });
    Ok(())
}

/// A joined subscriber sent something: `Bye` (it leaves), or anything else (refused, dropped).
fn on_message(shared: &PubShared, id: u64) {
    let got = {
        let subs = shared.subs();
        let Some(s) = subs.iter().find(|s| s.id == id) else { return };
        s.channel.recv()
    };
    match got {
        Ok((Message::Bye, _)) | Err(_) => {
            shared.remove(id);
        }
        Ok((other, _)) => {
            if let Some(s) = shared.remove(id) {
                s.drop_with(&format!("dropped: {} is not part of the stream protocol after the join", other.name()));
            }
        }
    }
}

/// What a subscriber has once it joined.
pub(crate) struct Joined {
    pub(crate) ring: PubRing,
    pub(crate) info: RingInfo,
    pub(crate) slots: Vec<SubSlot>,
    pub(crate) mine: SubRing,
    pub(crate) start: u64,
}

/// Runs a join from the subscriber's side.
pub(crate) fn join(ctx: Option<&Arc<Context>>, channel: &Channel, peer_copy: bool) -> Result<Joined> {
    let (ring, info) = match channel.recv()? {
        (Message::HostBytes { len }, mut fds) => PubRing::open(fds.pop().expect("checked by recv"), len)?,
        (Message::Verdict { ok: false, detail }, _) => {
            return Err(Error::Peer(format!("the publisher refused: {detail}")))
        }
        (other, _) => return Err(Error::Protocol(format!("{} where the publisher's ring was due", other.name()))),
    };
    let peer = channel.peer_pid().unwrap_or(0);
    if i64::from(info.pid) != i64::from(peer) {
        return Err(Error::Protocol(format!("the ring says publisher pid {}, the socket's peer is {peer}", info.pid)));
    }
    let refuse = |e: Error| {
        let _ = channel.send(&Message::Verdict { ok: false, detail: e.to_string() }, &[]);
        e
    };
    let mut slots = Vec::with_capacity(info.slots as usize);
    for i in 0..info.slots {
        let (desc, fd) = channel.recv_share().map_err(|e| match e {
            Error::Protocol(p) => Error::Protocol(format!("slot {i} of {}: {p}", info.slots)),
            e => e,
        })?;
        slots.push(SubSlot::import(ctx, &info, &desc, fd, peer_copy).map_err(refuse)?);
    }
    let mine = SubRing::create(info.slots).map_err(refuse)?;
    let fd = mine.map.dup_fd()?;
    channel.send(&Message::HostBytes { len: ring::sub_len(info.slots) as u64 }, &[fd.as_fd()])?;
    drop(fd);
    let start = match channel.recv()? {
        (Message::FrameReady { frame }, _) => frame,
        (Message::Verdict { ok: false, detail }, _) => {
            return Err(Error::Peer(format!("the publisher refused: {detail}")))
        }
        (other, _) => return Err(Error::Protocol(format!("{} where the join's answer was due", other.name()))),
    };
    Ok(Joined { ring, info, slots, mine, start })
}
