//! The frame protocol, in one place: which timeline values mark a frame, which messages say
//! so on the socket, and which [`Handoff`] each side's GPU work takes.
//!
//! One side produces a frame (writes it), the other consumes it (reads it, may write back),
//! then hands it back. With a shared timeline semaphore, frame `n` is marked by two values:
//! [`Frame::ready`] (`2n + 1`, signalled by the producer's work) and [`Frame::done`] (`2n + 2`,
//! signalled by the consumer's), so values only grow and the producer's next frame waits for
//! the previous `done`. Without one, each side waits for its own fence and the socket carries
//! the same steps ([`Message::FrameReady`] / [`Message::FrameDone`]).
//!
//! The reverse direction (a consumer that produces for the other side) is the same protocol
//! with the roles swapped: that side makes its [`FrameProtocol`] with [`Role::Producer`], on
//! its own semaphore. [`FrameSync`] is the GPU half alone, for two APIs in one process. New message kinds join as methods here, so callers never spell out a
//! message or a value.

use crate::error::{Error, Result};
use crate::shared::Handoff;
use crate::sync::{SemaphoreKind, SharedSemaphore};
use crate::transport::message::Message;
use crate::transport::socket::Channel;

/// A frame's place in the protocol: its index, and the timeline values that mark it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Frame(pub u64);

impl Frame {
    /// Frame number `index` (counted from 0).
    pub const fn new(index: u64) -> Frame {
        Frame(index)
    }
    /// Its index.
    pub const fn index(self) -> u64 {
        self.0
    }
    /// The value the producer's work signals when the frame is written and released.
    pub const fn ready(self) -> u64 {
        2 * self.0 + 1
    }
    /// The value the consumer's work signals when it is done with the frame.
    pub const fn done(self) -> u64 {
        2 * self.0 + 2
    }
    /// The value the producer waits for before it overwrites the memory: the previous frame's
    /// [`Frame::done`] (none for frame 0).
    pub const fn previous_done(self) -> Option<u64> {
        if self.0 == 0 {
            None
        } else {
            Some(2 * self.0)
        }
    }
    /// The frame after this one.
    pub const fn next(self) -> Frame {
        Frame(self.0 + 1)
    }
}

/// Which half of the protocol a side speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Writes frames: signals `ready`, waits for `done`.
    Producer,
    /// Reads (and may write back into) frames: waits for `ready`, signals `done`.
    Consumer,
}

impl Role {
    /// The role of the other side.
    pub fn other(self) -> Role {
        match self {
            Role::Producer => Role::Consumer,
            Role::Consumer => Role::Producer,
        }
    }
}

/// The GPU half of one side of the frame protocol: which [`Handoff`] this side's work on a
/// frame takes, from its [`Role`] and, where both drivers can share one, the timeline
/// semaphore (without one, every handoff is [`Handoff::host`]). Usable without a channel (two
/// APIs in one process, benchmarks); [`FrameProtocol`] pairs it with the messages.
#[derive(Clone, Copy)]
pub struct FrameSync<'a> {
    role: Role,
    semaphore: Option<&'a SharedSemaphore>,
}

impl<'a> FrameSync<'a> {
    /// This side's GPU ordering, synchronised by host fences alone until
    /// [`FrameSync::semaphore`] gives it a semaphore.
    pub fn new(role: Role) -> FrameSync<'a> {
        FrameSync { role, semaphore: None }
    }

    /// Orders the GPU work on `semaphore` (a shared semaphore) where it is given.
    pub fn semaphore(mut self, semaphore: Option<&'a SharedSemaphore>) -> Self {
        self.semaphore = semaphore;
        self
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The GPU wait before this side touches `frame`: the producer waits for the previous
    /// frame's `done`, the consumer for this frame's `ready`. Host-only without a semaphore.
    /// A binary semaphore's signal is consumed by one wait, so there the producer takes none:
    /// it consumed `done` when it read the frame back ([`FrameSync::after_peer`]).
    pub fn before(&self, frame: Frame) -> Handoff<'a> {
        let binary = self.semaphore.is_some_and(|s| s.kind() == SemaphoreKind::Binary);
        match (self.semaphore, wait_before(self.role, binary, frame)) {
            (Some(s), Some(v)) => Handoff::host().wait(s, v),
            _ => Handoff::host(),
        }
    }

    /// The GPU signal after this side's work on `frame`: `ready` from the producer, `done` from
    /// the consumer. Host-only without a semaphore.
    pub fn after(&self, frame: Frame) -> Handoff<'a> {
        let value = signal_after(self.role, frame);
        self.semaphore.map_or_else(Handoff::host, |s| Handoff::host().signal(s, value))
    }

    /// [`FrameSync::before`] and [`FrameSync::after`] in one: this side's whole work on
    /// `frame` in one submission.
    pub fn around(&self, frame: Frame) -> Handoff<'a> {
        self.before(frame).and(self.after(frame))
    }

    /// The GPU wait for the other side's signal of `frame` (the producer reading back what the
    /// consumer wrote waits for `done`; the consumer waits for `ready`).
    pub fn after_peer(&self, frame: Frame) -> Handoff<'a> {
        let value = signal_after(self.role.other(), frame);
        self.semaphore.map_or_else(Handoff::host, |s| Handoff::host().wait(s, value))
    }
}

/// The value `role` waits for before its work on `frame` (see [`FrameSync::before`]).
fn wait_before(role: Role, binary: bool, frame: Frame) -> Option<u64> {
    match role {
        Role::Producer if binary => None,
        Role::Producer => frame.previous_done(),
        Role::Consumer => Some(frame.ready()),
    }
}

/// The value `role` signals after its work on `frame`.
fn signal_after(role: Role, frame: Frame) -> u64 {
    match role {
        Role::Producer => frame.ready(),
        Role::Consumer => frame.done(),
    }
}

/// One side of the frame protocol: the channel to the other side and this side's
/// [`FrameSync`]. Every message of the protocol is sent and awaited here.
#[derive(Clone, Copy)]
pub struct FrameProtocol<'a> {
    channel: &'a Channel,
    sync: FrameSync<'a>,
}

impl<'a> FrameProtocol<'a> {
    /// This side of the protocol on `channel`, synchronised by host fences alone until
    /// [`FrameProtocol::semaphore`] gives it a semaphore.
    pub fn new(channel: &'a Channel, role: Role) -> FrameProtocol<'a> {
        FrameProtocol { channel, sync: FrameSync::new(role) }
    }

    /// Orders the GPU work on `semaphore` (a shared semaphore) where it is given.
    pub fn semaphore(mut self, semaphore: Option<&'a SharedSemaphore>) -> Self {
        self.sync = self.sync.semaphore(semaphore);
        self
    }

    /// The GPU half: the handoffs of this side's work.
    pub fn sync(&self) -> FrameSync<'a> {
        self.sync
    }

    /// The channel the messages go over.
    pub fn channel(&self) -> &'a Channel {
        self.channel
    }

    /// Tells the other side that `frame` is written and released (the producer's step).
    pub fn signal_ready(&self, frame: Frame) -> Result<()> {
        self.channel.send(&Message::FrameReady { frame: frame.0 }, &[])
    }

    /// Waits for the other side's [`FrameProtocol::signal_ready`] of `frame`.
    pub fn wait_ready(&self, frame: Frame) -> Result<()> {
        match self.channel.recv_plain("FrameReady")? {
            Message::FrameReady { frame: f } if f == frame.0 => Ok(()),
            other => Err(Error::Protocol(format!("expected FrameReady {}, got {other:?}", frame.0))),
        }
    }

    /// Tells the other side this side is done with `frame` and hands the memory back (the
    /// consumer's step).
    pub fn signal_done(&self, frame: Frame) -> Result<()> {
        self.channel.send(&Message::FrameDone { frame: frame.0 }, &[])
    }

    /// Waits for the other side's [`FrameProtocol::signal_done`] of `frame`.
    pub fn wait_done(&self, frame: Frame) -> Result<()> {
        match self.channel.recv_plain("FrameDone")? {
            Message::FrameDone { frame: f } if f == frame.0 => Ok(()),
            other => Err(Error::Protocol(format!("expected FrameDone {}, got {other:?}", frame.0))),
        }
    }

    /// [`FrameSync::before`] of this side.
    pub fn before(&self, frame: Frame) -> Handoff<'a> {
        self.sync.before(frame)
    }
    /// [`FrameSync::after`] of this side.
    pub fn after(&self, frame: Frame) -> Handoff<'a> {
        self.sync.after(frame)
    }
    /// [`FrameSync::around`] of this side.
    pub fn around(&self, frame: Frame) -> Handoff<'a> {
        self.sync.around(frame)
    }
    /// [`FrameSync::after_peer`] of this side.
    pub fn after_peer(&self, frame: Frame) -> Handoff<'a> {
        self.sync.after_peer(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::{signal_after, wait_before, Frame, Role};

    #[test]
    fn each_side_waits_for_what_the_other_signals() {
        for n in 0..10 {
            let f = Frame::new(n);
            // The consumer waits for exactly what the producer signals, and the reverse.
            assert_eq!(wait_before(Role::Consumer, false, f), Some(signal_after(Role::Producer, f)));
            if n > 0 {
                let previous = Frame::new(n - 1);
                assert_eq!(wait_before(Role::Producer, false, f), Some(signal_after(Role::Consumer, previous)));
            }
            // A binary semaphore's `done` was consumed by the producer's read-back already.
            assert_eq!(wait_before(Role::Producer, true, f), None);
            assert_eq!(Role::Producer.other(), Role::Consumer);
        }
        assert_eq!(wait_before(Role::Producer, false, Frame::new(0)), None);
    }

    #[test]
    fn values_grow_and_never_collide() {
        let mut last = 0;
        for n in 0..100 {
            let f = Frame::new(n);
            assert_eq!(f.previous_done(), (n > 0).then_some(last));
            assert!(f.ready() > last && f.done() == f.ready() + 1);
            last = f.done();
            assert_eq!(f.next().previous_done(), Some(f.done()));
        }
        assert_eq!(Frame::new(0).ready(), 1);
        assert_eq!(Frame::new(3).done(), 8);
    }
}
