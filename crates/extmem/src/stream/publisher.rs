//! The publisher: a named ring of slots, `acquire` a free one, write it, `publish` it.
//!
//! Every: slot `n % slots` carries frame `n`; before it is rewritten with frame `n`, every
//! subscriber that takes frame `n - slots` must have released it (its ring's `release` value
//! for the slot), waited for as [`crate::stream::Wait`] says; a subscriber that holds it past
//! the hold timeout is dropped with the reason on its socket. Latest: any slot that is neither
//! the newest nor held by a subscriber; the slot is marked mid-write (odd seq) and the holds
//! looked at again after a full fence, so a subscriber that claims it at the same moment is
//! seen by one side or the other.

use super::control;
use super::memory::SlotMemory;
use super::name::{self, NameLock};
use super::options::{Memory, Policy, StreamOptions};
use super::ring::{make_head, PubRing, RingInfo, MAX_METADATA};
use super::state::PubShared;
use super::wait::{futex_wait, futex_wake, monotonic_ns, Waiter, SLICE};
use crate::context::Context;
use crate::desc::ResourceDesc;
use crate::error::{Error, Result};
use crate::shared::{Handoff, SharedMemory};
use crate::transport::{Listener, Message};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The publishing side of a named stream.
pub struct Publisher {
    shared: Arc<PubShared>,
    control: Option<std::thread::JoinHandle<()>>,
    next: u64,
    /// The frame each slot holds now.
    slot_frame: Vec<Option<u64>>,
    newest: Option<u32>,
    /// The slot acquired and not yet published, while its `Slot` lives.
    out: Option<(u32, std::sync::Weak<()>)>,
    _lock: NameLock,
}

/// A slot handed out by [`Publisher::acquire`]: write the frame into it, then
/// [`Publisher::publish`] it.
pub struct Slot {
    slot: u32,
    index: u64,
    memory: Arc<SlotMemory>,
    metadata: Vec<u8>,
    owner: Arc<PubShared>,
    published: bool,
    _token: Arc<()>,
}

impl Publisher {
    /// Publishes stream `name` from `ctx`'s device (device memory) or host memory.
    pub fn create(ctx: &Arc<Context>, name: &str, options: StreamOptions) -> Result<Publisher> {
        Self::make(Some(ctx), name, options)
    }

    /// Publishes a host-memory stream with no Vulkan device (`options.memory` must be host).
    pub fn create_host(name: &str, options: StreamOptions) -> Result<Publisher> {
        if options.memory != Memory::Host {
            return Err(Error::Invalid("a publisher with no Vulkan context publishes host memory only".into()));
        }
        Self::make(None, name, options)
    }

    fn make(ctx: Option<&Arc<Context>>, name: &str, options: StreamOptions) -> Result<Publisher> {
        name::check_name(name)?;
        options.check()?;
        let lock = NameLock::take(name)?;
        let slots =
            (0..options.slots).map(|_| SlotMemory::create(ctx, &options).map(Arc::new)).collect::<Result<Vec<_>>>()?;
        let (kind, format, width, height) = match options.resource {
            ResourceDesc::Image(i) => (1, i.format.as_raw(), i.extent.width, i.extent.height),
            _ => (2, 0, 0, 0),
        };
        let bytes = match (&options.memory, &*slots[0]) {
            (Memory::Host, _) => options.host_bytes()?,
            (_, SlotMemory::Device(m)) => m.allocation_size(),
            (_, SlotMemory::Host { bytes, .. }) => *bytes,
        };
        let info = RingInfo {
            slots: options.slots,
            policy: options.policy.code(),
            memory: if options.memory == Memory::Host { 2 } else { 1 },
            kind,
            format,
            width,
            height,
            bytes,
            pid: std::process::id(),
        };
        let ring = PubRing::create(&info)?;
        let listener = Listener::bind(&name::socket_path(name)?)?;
        let shared = Arc::new(PubShared {
            name: name.to_owned(),
            ring,
            slots,
            options,
            subs: Mutex::new(Vec::new()),
            next_publish: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let control = std::thread::Builder::new()
            .name(format!("extmem-stream-{name}"))
            .spawn(move || control::serve(s, listener))
            .map_err(|e| Error::Io { context: "starting the stream's control thread".into(), source: e })?;
        let n = options.slots as usize;
        Ok(Publisher {
            shared,
            control: Some(control),
            next: 0,
            slot_frame: vec![None; n],
            newest: None,
            out: None,
            _lock: lock,
        })
    }

    #[cfg(feature = "testing")]
    pub(crate) fn shared(&self) -> &PubShared {
        &self.shared
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Subscribers joined now.
    pub fn subscribers(&self) -> usize {
        self.shared.subs().len()
    }

    /// The pids of the subscribers joined now.
    pub fn subscriber_pids(&self) -> Vec<u32> {
        self.shared.subs().iter().map(|s| s.pid).collect()
    }

    /// The number the next published frame carries.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// A slot to write the next frame into, once no subscriber holds it (every: waits; latest:
    /// never waits). One slot is out at a time.
    pub fn acquire(&mut self) -> Result<Slot> {
        if self.out.as_ref().is_some_and(|(_, t)| t.strong_count() > 0) {
            return Err(Error::Invalid("a slot is already acquired: publish it (or drop it) first".into()));
        }
        let slot = match self.shared.options.policy {
            Policy::Every => self.acquire_every()?,
            Policy::Latest => self.acquire_latest()?,
        };
        let token = Arc::new(());
        self.out = Some((slot, Arc::downgrade(&token)));
        Ok(Slot {
            _token: token,
            slot,
            index: self.next,
            memory: self.shared.slots[slot as usize].clone(),
            metadata: Vec::new(),
            owner: self.shared.clone(),
            published: false,
        })
    }

    fn acquire_every(&mut self) -> Result<u32> {
        let slots = self.shared.ring.slots as u64;
        let slot = (self.next % slots) as u32;
        if let Some(previous) = self.next.checked_sub(slots) {
            self.wait_released(previous)?;
        }
        Ok(slot)
    }

    /// Waits until every subscriber that takes frame `frame` released it (every; a holder past
    /// the hold timeout is dropped), as the stream's wait strategy says. The benchmark's
    /// round trip ends here.
    pub fn wait_released(&self, frame: u64) -> Result<()> {
        let shared = &self.shared;
        if shared.options.policy != Policy::Every {
            return Err(Error::Invalid("wait_released is for streams of the every policy".into()));
        }
        let slot = (frame % shared.ring.slots as u64) as u32;
        let started = Instant::now();
        let mut waiter = Waiter::new(shared.options.wait);
        loop {
            // The first subscriber that still holds `frame` (taken once per look).
            let stalled = {
                let mut subs = shared.subs();
                let now = Instant::now();
                let mut stalled = None;
                for s in subs.iter_mut() {
                    let done = s.start > frame || s.ring.release(slot).load(Ordering::Acquire) > frame;
                    if done {
                        s.stalled_since = None;
                    } else if stalled.is_none() {
                        let since = *s.stalled_since.get_or_insert(now);
                        stalled = Some((s.id, s.pid, since, s.ring.clone()));
                    }
                }
                stalled
            };
            let Some((id, pid, since, ring)) = stalled else { return Ok(()) };
            let o = &shared.options;
            if since.elapsed() > o.hold_timeout {
                if let Some(s) = shared.remove(id) {
                    s.drop_with(&format!(
                        "dropped: held frame {frame} (slot {slot}) for more than {:.1} s (the hold timeout of stream {:?})",
                        o.hold_timeout.as_secs_f64(),
                        shared.name
                    ));
                }
                continue;
            }
            if started.elapsed() > o.acquire_timeout {
                return Err(Error::Peer(format!(
                    "no free slot in stream {:?} within {:.1} s: subscriber pid {pid} still holds frame {frame} (slot {slot})",
                    shared.name,
                    o.acquire_timeout.as_secs_f64()
                )));
            }
            if waiter.should_sleep() {
                let seen = ring.wake().load(Ordering::Acquire);
                shared.ring.publisher_waiting().store(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if ring.release(slot).load(Ordering::Acquire) <= frame {
                    futex_wait(ring.wake(), seen, SLICE);
                }
                shared.ring.publisher_waiting().store(0, Ordering::Relaxed);
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn acquire_latest(&mut self) -> Result<u32> {
        let shared = &self.shared;
        let n = shared.ring.slots;
        for attempt in 0..2 {
            let first = self.newest.map_or(0, |s| s + 1);
            for k in 0..n {
                let s = (first + k) % n;
                if Some(s) == self.newest {
                    continue;
                }
                if self.held(s) {
                    continue;
                }
                shared.ring.invalidate(s);
                fence(Ordering::SeqCst);
                if self.held(s) {
                    shared.ring.restore(s);
                    continue;
                }
                return Ok(s);
            }
            if attempt == 0 {
                // Nothing free: a subscriber holds more than the one frame latest allows.
                self.drop_greedy();
            }
        }
        Err(Error::Peer(format!("no free slot in stream {:?}: every slot is held or newest", shared.name)))
    }

    /// Whether a subscriber holds the frame in slot `s`.
    fn held(&self, s: u32) -> bool {
        let Some(frame) = self.slot_frame[s as usize] else { return false };
        self.shared.subs().iter().any(|sub| sub.ring.hold(s).load(Ordering::SeqCst) == frame + 1)
    }

    /// Drops each subscriber holding more than one slot (latest).
    fn drop_greedy(&self) {
        let greedy: Vec<(u64, usize)> = self
            .shared
            .subs()
            .iter()
            .map(|sub| {
                let held = (0..self.shared.ring.slots)
                    .filter(|&s| {
                        self.slot_frame[s as usize].is_some_and(|f| sub.ring.hold(s).load(Ordering::SeqCst) == f + 1)
                    })
                    .count();
                (sub.id, held)
            })
            .filter(|&(_, held)| held > 1)
            .collect();
        for (id, held) in greedy {
            if let Some(s) = self.shared.remove(id) {
                s.drop_with(&format!("dropped: held {held} slots of a latest stream, which allows one"));
            }
        }
    }

    /// Publishes `slot`'s frame. `handoff` says how its writes were ordered: the host path
    /// (the work is complete, as [`Handoff::host`] writes are when they return) is what every
    /// driver can do; GPU-signalled ready values are not carried by the ring yet and are refused.
    pub fn publish(&mut self, mut slot: Slot, handoff: Handoff<'_>) -> Result<()> {
        let stamp = monotonic_ns();
        if !Arc::ptr_eq(&slot.owner, &self.shared)
            || self.out.as_ref().map(|o| o.0) != Some(slot.slot)
            || slot.index != self.next
        {
            return Err(Error::Invalid("this slot was not acquired from this publisher just now".into()));
        }
        if handoff.on_gpu() {
            return Err(Error::Unsupported(
                "a stream frame published with a GPU semaphore signal: the ring carries host-completed frames only \
                 today; wait for the work (Handoff::host) before publishing"
                    .into(),
            ));
        }
        let (s, n) = (slot.slot, slot.index);
        let ring = &self.shared.ring;
        ring.write_entry(s, n, n + 1, stamp, &slot.metadata);
        ring.head().store(make_head(n, s), Ordering::Release);
        ring.published().fetch_add(1, Ordering::Relaxed);
        self.shared.next_publish.store(n + 1, Ordering::Release);
        ring.wake().fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.shared.subs().iter().any(|sub| sub.ring.sleeping().load(Ordering::Relaxed) != 0) {
            futex_wake(ring.wake());
        }
        slot.published = true;
        self.slot_frame[s as usize] = Some(n);
        self.newest = Some(s);
        self.out = None;
        self.next = n + 1;
        Ok(())
    }

    /// Ends the stream cleanly: subscribers see the end once they have taken what they take.
    pub fn finish(self) {
        drop(self)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let ring = &self.shared.ring;
        ring.state().store(1, Ordering::Release);
        ring.wake().fetch_add(1, Ordering::Release);
        futex_wake(ring.wake());
        for s in self.shared.subs().iter() {
            let _ = s.channel.send(&Message::Bye, &[]);
        }
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.control.take() {
            let _ = t.join();
        }
    }
}

impl Slot {
    /// The slot's number in the ring.
    pub fn slot(&self) -> u32 {
        self.slot
    }
    /// The frame number it will carry.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The slot's Vulkan memory (device streams).
    pub fn memory(&self) -> Option<&SharedMemory> {
        match &*self.memory {
            SlotMemory::Device(m) => Some(m),
            SlotMemory::Host { .. } => None,
        }
    }
    /// The handoff that orders this side's writes after every holder's release: the slot is
    /// free on the host when `acquire` returns, so it is the host path.
    pub fn handoff(&self) -> Handoff<'static> {
        Handoff::host()
    }
    /// Sets the frame's user metadata (at most 256 bytes).
    pub fn set_metadata(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() > MAX_METADATA {
            return Err(Error::Invalid(format!(
                "{} bytes of metadata; a frame carries at most {MAX_METADATA}",
                bytes.len()
            )));
        }
        self.metadata = bytes.to_vec();
        Ok(())
    }
    /// Host streams: the slot's bytes (first byte and length), writable until it is published.
    pub fn host_ptr(&self) -> Option<(*mut u8, usize)> {
        match &*self.memory {
            SlotMemory::Host { mapping, bytes } => Some((mapping.ptr().cast::<u8>(), *bytes as usize)),
            SlotMemory::Device(_) => None,
        }
    }
    /// Host streams: copies `data` into the slot (at most its size).
    pub fn write_host(&mut self, data: &[u8]) -> Result<()> {
        let (ptr, len) =
            self.host_ptr().ok_or_else(|| Error::Invalid("write_host on a device-memory stream".into()))?;
        if data.len() > len {
            return Err(Error::Invalid(format!("{} bytes into a slot of {len}", data.len())));
        }
        // SAFETY: the mapping holds `len` bytes and lives as long as `self.memory`; no
        // subscriber reads the slot while it is acquired (it is free, or mid-write for latest).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
        Ok(())
    }
}

/// Keeps a slot's memory mapped (for bindings whose views of a slot may outlive the `Slot`).
#[derive(Clone)]
pub struct SlotMapping {
    _memory: Arc<SlotMemory>,
}

impl Slot {
    /// A handle that keeps this slot's memory mapped (see [`SlotMapping`]).
    pub fn mapping(&self) -> SlotMapping {
        SlotMapping { _memory: self.memory.clone() }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.published && self.owner.options.policy == Policy::Latest {
            self.owner.ring.restore(self.slot);
        }
    }
}
