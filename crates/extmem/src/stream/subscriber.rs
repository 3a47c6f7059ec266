//! The subscriber: joins a named stream once (its slots imported once), then takes frames
//! from the publisher's ring with no socket message per frame.
//!
//! Each field of the publisher's ring is loaded once into a local and checked before use: the
//! head's slot against the slot count, frame numbers against the cursor (every: exactly the
//! next frame, never `slots` or more ahead; latest: newer than the last one taken), the
//! ready value against (last, last + 2 x slots], the metadata length against 256. A slot
//! that stays mid-write for [`STUCK`] is a publisher fault. A dead publisher (its pidfd) ends
//! `next` with an error distinct from the clean end (`Ok(None)`).

use super::conn::Conn;
use super::control::join;
use super::frame::StreamFrame;
use super::name;
use super::options::{Policy, SubscribeOptions};
use super::ring::{split_head, MAX_METADATA};
use super::wait::{count_syscall, futex_wait, Waiter, SLICE};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::transport::liveness::ProcessWatch;
use crate::transport::{Channel, Message};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A slot mid-write for this long is a publisher fault (a write takes well under a microsecond).
pub const STUCK: Duration = Duration::from_secs(1);
/// How often a busy subscriber looks at the publisher's process and the socket.
const CHECK: Duration = Duration::from_millis(50);

/// The subscribing side of a named stream.
pub struct Subscriber {
    name: String,
    ctx: Option<Arc<Context>>,
    options: SubscribeOptions,
    conn: Arc<Conn>,
    cursor: u64,
    last: Option<u64>,
    last_ready: u64,
    held: Option<(u32, u64)>,
    last_check: Instant,
    stuck_since: Option<Instant>,
    ended: bool,
}

// Moved once per look at the ring, never stored: boxing the frame would allocate per frame.
#[allow(clippy::large_enum_variant)]
enum Step {
    Frame(StreamFrame),
    Nothing,
    Ended,
}

impl Subscriber {
    /// Joins stream `name` with the default options, importing its slots into `ctx`.
    pub fn connect(ctx: &Arc<Context>, name: &str) -> Result<Subscriber> {
        Self::connect_with(ctx, name, SubscribeOptions::default())
    }

    /// Joins stream `name` as `options` say.
    pub fn connect_with(ctx: &Arc<Context>, name: &str, options: SubscribeOptions) -> Result<Subscriber> {
        Self::open(Some(ctx.clone()), name, options)
    }

    /// Joins a host-memory stream with no Vulkan device: frames are read-only host mappings.
    pub fn connect_host(name: &str, options: SubscribeOptions) -> Result<Subscriber> {
        Self::open(None, name, options)
    }

    fn open(ctx: Option<Arc<Context>>, name: &str, options: SubscribeOptions) -> Result<Subscriber> {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let (conn, start) = Self::dial(ctx.as_ref(), name, &options, deadline)?;
        Ok(Subscriber {
            name: name.to_owned(),
            ctx,
            options,
            conn,
            cursor: start,
            last: None,
            last_ready: start.saturating_sub(1),
            held: None,
            last_check: Instant::now(),
            stuck_since: None,
            ended: false,
        })
    }

    /// Connects and joins, waiting for the publisher to appear until `deadline` (none: once).
    fn dial(
        ctx: Option<&Arc<Context>>,
        name: &str,
        options: &SubscribeOptions,
        deadline: Option<Instant>,
    ) -> Result<(Arc<Conn>, u64)> {
        let path = name::socket_path(name)?;
        let mut channel = loop {
            match Channel::connect(&path) {
                Ok(c) => break c,
                Err(e) => {
                    if deadline.is_none_or(|d| Instant::now() >= d) {
                        return Err(Error::Peer(format!("no publisher of stream {name:?}: {e}")));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        channel.set_timeout(Duration::from_secs(10));
        let pid = channel.peer_pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
        let joined = join(ctx, &channel, options.peer_copy)?;
        let policy = Policy::from_code(joined.info.policy);
        let conn = Conn {
            channel,
            watch: ProcessWatch::new(pid)?,
            ring: joined.ring,
            info: joined.info,
            mine: joined.mine,
            slots: joined.slots,
            policy,
        };
        Ok((Arc::new(conn), joined.start))
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The policy the publisher set.
    pub fn policy(&self) -> Policy {
        self.conn.policy
    }
    /// Slots in the ring.
    pub fn slots(&self) -> u32 {
        self.conn.info.slots
    }
    /// The publisher's pid.
    pub fn publisher_pid(&self) -> u32 {
        self.conn.info.pid
    }
    /// Bytes of a frame's data (host streams: what [`StreamFrame::to_vec`] returns).
    pub fn frame_bytes(&self) -> u64 {
        self.conn.info.bytes
    }
    /// Width and height of an image-shaped stream (0, 0 for buffers).
    pub fn extent(&self) -> (u32, u32) {
        (self.conn.info.width, self.conn.info.height)
    }
    /// Whether the frames are in host memory.
    pub fn is_host_memory(&self) -> bool {
        self.conn.info.memory == 2
    }

    /// The next frame: `Ok(None)` at a clean end of the stream, an error when the publisher
    /// died (unless asked to reconnect), dropped this subscriber, broke the protocol, or no
    /// frame came within the timeout.
    // The stream's contract names it `next`; it is fallible, so not `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<StreamFrame>> {
        self.release_latest();
        let deadline = self.options.timeout.map(|t| Instant::now() + t);
        let mut waiter = Waiter::new(self.options.wait);
        loop {
            match self.step()? {
                Step::Frame(f) => return Ok(Some(f)),
                Step::Ended => return Ok(None),
                Step::Nothing => {}
            }
            if waiter.check_due() && self.last_check.elapsed() > CHECK {
                self.slow_checks(deadline)?;
            }
            if waiter.should_sleep() {
                self.sleep(deadline)?;
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// A frame when one is ready now, else `Ok(None)` (no waiting). A clean end also gives
    /// `Ok(None)`; [`Subscriber::ended`] tells them apart.
    pub fn try_next(&mut self) -> Result<Option<StreamFrame>> {
        self.release_latest();
        match self.step()? {
            Step::Frame(f) => Ok(Some(f)),
            Step::Ended | Step::Nothing => Ok(None),
        }
    }

    /// Whether the publisher ended the stream cleanly and every frame was taken.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn release_latest(&mut self) {
        if let Some((slot, frame)) = self.held.take() {
            self.conn.release(slot, frame);
        }
    }

    fn sleep(&mut self, deadline: Option<Instant>) -> Result<()> {
        let ring = &self.conn.ring;
        let seen = ring.wake().load(Ordering::Acquire);
        self.conn.mine.sleeping().store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let head = ring.head().load(Ordering::Acquire);
        if split_head(head).is_none_or(|(n, _)| !self.is_new(n)) && ring.state().load(Ordering::Acquire) == 0 {
            let left = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()).min(SLICE));
            futex_wait(ring.wake(), seen, left);
        }
        self.conn.mine.sleeping().store(0, Ordering::Relaxed);
        if self.last_check.elapsed() > CHECK {
            self.slow_checks(deadline)?;
        }
        Ok(())
    }

    fn is_new(&self, n: u64) -> bool {
        match self.conn.policy {
            Policy::Every => n >= self.cursor,
            Policy::Latest => self.last.is_none_or(|l| n > l),
        }
    }

    /// The slow conditions: a message on the socket (dropped, Bye), the publisher's death, the
    /// deadline.
    fn slow_checks(&mut self, deadline: Option<Instant>) -> Result<()> {
        self.last_check = Instant::now();
        count_syscall();
        if readable(&self.conn.channel) {
            match self.conn.channel.recv() {
                Ok((Message::Verdict { ok: false, detail }, _)) => {
                    return Err(Error::Peer(format!("stream {:?}: the publisher {detail}", self.name)))
                }
                Ok((Message::Bye, _)) => {}
                Ok((other, _)) => {
                    return Err(Error::Protocol(format!(
                        "{} from the publisher of stream {:?}",
                        other.name(),
                        self.name
                    )))
                }
                Err(_) => {} // hung up: the pidfd or the ring's end says which
            }
        }
        count_syscall();
        if self.conn.watch.exited() && self.conn.ring.state().load(Ordering::Acquire) == 0 {
            // One last look: frames published before the death are still good.
            if self.options.reconnect {
                return self.reconnect(deadline);
            }
            return Err(Error::Peer(format!(
                "the publisher of stream {:?} (pid {}) died without ending the stream",
                self.name, self.conn.info.pid
            )));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Peer(format!(
                "no frame of stream {:?} within {:.1} s",
                self.name,
                self.options.timeout.unwrap_or_default().as_secs_f64()
            )));
        }
        Ok(())
    }

    fn reconnect(&mut self, deadline: Option<Instant>) -> Result<()> {
        loop {
            match Self::dial(self.ctx.as_ref(), &self.name, &self.options, Some(Instant::now() + SLICE)) {
                Ok((conn, start)) => {
                    self.held = None;
                    self.conn = conn;
                    self.cursor = start;
                    self.last = None;
                    self.last_ready = start.saturating_sub(1);
                    self.stuck_since = None;
                    return Ok(());
                }
                Err(e) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(Error::Peer(format!(
                        "the publisher of stream {:?} died and none came back in time: {e}",
                        self.name
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// One look at the ring.
    fn step(&mut self) -> Result<Step> {
        let conn = self.conn.clone();
        let ring = &conn.ring;
        let slots = conn.info.slots;
        let head = ring.head().load(Ordering::Acquire);
        let Some((n, s)) = split_head(head) else { return Ok(self.end_or_nothing()) };
        if s >= slots {
            return Err(self.fault(format!("the head names slot {s} of {slots}")));
        }
        let (slot, frame) = match conn.policy {
            Policy::Every => {
                if n < self.cursor {
                    return Ok(self.end_or_nothing());
                }
                if n - self.cursor >= slots as u64 {
                    return Err(self.fault(format!(
                        "the head says frame {n} while frame {} is not released ({slots} slots): overrun",
                        self.cursor
                    )));
                }
                ((self.cursor % slots as u64) as u32, self.cursor)
            }
            Policy::Latest => {
                if let Some(l) = self.last {
                    if n < l {
                        return Err(self.fault(format!("the head went back from frame {l} to {n}")));
                    }
                    if n == l {
                        return Ok(self.end_or_nothing());
                    }
                }
                conn.mine.hold(s).store(n + 1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                (s, n)
            }
        };
        let Some(entry) = ring.read_entry(slot) else {
            if conn.policy == Policy::Latest {
                conn.mine.hold(slot).store(0, Ordering::SeqCst);
            }
            let since = *self.stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() > STUCK {
                return Err(self.fault(format!("slot {slot} stayed mid-write for over {:.0} s", STUCK.as_secs_f64())));
            }
            return Ok(Step::Nothing);
        };
        self.stuck_since = None;
        if entry.frame != frame {
            if conn.policy == Policy::Latest {
                // Rewritten since the head was read: a newer head is coming.
                conn.mine.hold(slot).store(0, Ordering::SeqCst);
                return Ok(Step::Nothing);
            }
            return Err(self.fault(format!("slot {slot} holds frame {}, the ring says frame {frame}", entry.frame)));
        }
        let max_ready = self.last_ready.saturating_add(2 * slots as u64);
        let ready_ok = entry.ready > self.last_ready && entry.ready == frame.wrapping_add(1);
        if !ready_ok || (conn.policy == Policy::Every && entry.ready > max_ready) {
            if conn.policy == Policy::Latest {
                conn.mine.hold(slot).store(0, Ordering::SeqCst);
            }
            return Err(self.fault(format!(
                "frame {frame}'s ready value {} is outside ({}, {max_ready}] or is not frame + 1",
                entry.ready, self.last_ready
            )));
        }
        if entry.meta_len as usize > MAX_METADATA {
            return Err(self.fault(format!("frame {frame} says {} bytes of metadata (at most 256)", entry.meta_len)));
        }
        self.last_ready = entry.ready;
        match conn.policy {
            Policy::Every => {
                self.cursor = frame + 1;
                conn.mine.cursor().store(self.cursor, Ordering::Relaxed);
            }
            Policy::Latest => {
                self.last = Some(frame);
                self.held = Some((slot, frame));
            }
        }
        Ok(Step::Frame(StreamFrame {
            conn: conn.clone(),
            slot,
            index: frame,
            ready: entry.ready,
            timestamp_ns: entry.timestamp_ns,
            meta_len: entry.meta_len as usize,
            meta: entry.meta,
        }))
    }

    /// No new frame: the end when the publisher ended the stream and no frame came in
    /// between (the head is read again after the state, which the publisher sets last).
    fn end_or_nothing(&mut self) -> Step {
        let ring = &self.conn.ring;
        if ring.state().load(Ordering::Acquire) == 0 {
            return Step::Nothing;
        }
        if split_head(ring.head().load(Ordering::Acquire)).is_some_and(|(n, _)| self.is_new(n)) {
            return Step::Nothing;
        }
        self.ended = true;
        Step::Ended
    }

    fn fault(&self, what: String) -> Error {
        Error::Protocol(format!("stream {:?} (publisher pid {}): {what}; refused", self.name, self.conn.info.pid))
    }
}

fn readable(channel: &Channel) -> bool {
    let mut fds = [rustix::event::PollFd::new(channel, rustix::event::PollFlags::IN)];
    let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}
