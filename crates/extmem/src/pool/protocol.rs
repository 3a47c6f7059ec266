//! The pool protocol, one owner for both sides.
//!
//! ```text
//! producer                                   consumer
//! PoolBlock(block) + fd   (once per block) ->  import the block, keep it
//! PoolShare(handle, resource)              ->  check, bind a resource at the offset
//!                                          <-  PoolHeld(handle)     (or Verdict ok=false: refused)
//!                   ... the consumer uses it ...
//!                                          <-  PoolRelease(handle)
//! ```
//! The producer side is a [`PoolLink`] per consumer connection; the consumer side answers
//! with [`held`], [`released`] and [`refused`]. A link whose consumer disconnects or dies, or
//! that is dropped, releases everything that consumer held. A consumer's text reaches the
//! producer escaped ([`crate::transport::text::escape`]).

use super::{ConsumerId, Pool, Pooled};
use crate::error::{Error, Result};
use crate::pool_desc::PoolHandle;
use crate::transport::message::Message;
use crate::transport::socket::Channel;
use crate::transport::text::escape;
use std::collections::HashSet;
use std::os::fd::AsFd;

/// The producer's end of one consumer's connection: which blocks it was sent, what it holds.
pub struct PoolLink<'a> {
    pool: Pool,
    channel: &'a Channel,
    consumer: ConsumerId,
    sent: HashSet<u32>,
}

impl<'a> PoolLink<'a> {
    /// A new consumer of `pool`, reached over `channel`.
    pub fn new(pool: &Pool, channel: &'a Channel) -> PoolLink<'a> {
        PoolLink { pool: pool.clone(), channel, consumer: pool.add_consumer(), sent: HashSet::new() }
    }

    /// This consumer's id in the pool.
    pub fn consumer(&self) -> ConsumerId {
        self.consumer
    }

    /// Whether block `block` was sent to this consumer already.
    pub fn has_block(&self, block: u32) -> bool {
        self.sent.contains(&block)
    }

    /// Sends block `block` with its descriptor if this consumer does not have it yet (the
    /// block's export and the consumer's import happen once; time them apart with this).
    pub fn send_block(&mut self, block: u32) -> Result<()> {
        if self.sent.contains(&block) {
            return Ok(());
        }
        let inner = self.pool.inner();
        let desc = inner.block_desc(block)?;
        let fd = inner.export_block(block)?;
        self.channel.send(&Message::PoolBlock(desc), &[fd.as_fd()])?;
        self.sent.insert(block);
        Ok(())
    }

    /// Hands `pooled` over: the block first if this consumer does not have it, then the
    /// metadata. The consumer holds it from now until it releases it, refuses it or goes.
    pub fn share(&mut self, pooled: &Pooled) -> Result<()> {
        let desc = pooled.desc();
        self.send_block(desc.handle.block)?;
        self.pool.inner().add_holder(&desc.handle, self.consumer)?;
        if let Err(e) = self.channel.send(&Message::PoolShare(desc), &[]) {
            let _ = self.pool.inner().release_holder(&desc.handle, self.consumer);
            return Err(e);
        }
        Ok(())
    }

    /// One whole pooled hand-off, as a soak or a benchmark repeats it: shares `pooled`, waits
    /// until the consumer holds it, then until it released it again (`extmem peer --pool`
    /// releases each hand-off as soon as it holds it). A refusal is an error with the reason.
    pub fn round_trip(&mut self, pooled: &Pooled) -> Result<()> {
        let handle = pooled.handle();
        self.share(pooled)?;
        self.wait_held(&handle)?;
        self.wait_released(&handle)
    }

    /// Waits for the consumer to say it holds `handle`, taking the releases that come first.
    /// A refusal is an error with the consumer's reason (and the consumer does not hold it).
    pub fn wait_held(&mut self, handle: &PoolHandle) -> Result<()> {
        loop {
            match self.recv()? {
                Message::PoolHeld(h) if h == *handle => return Ok(()),
                Message::Verdict { ok: false, detail } => {
                    let _ = self.pool.inner().release_holder(handle, self.consumer);
                    return Err(Error::Peer(format!("the consumer refused {handle}: {}", escape(&detail))));
                }
                other => self.unexpected(other)?,
            }
        }
    }

    /// Waits for the consumer to release `handle`, taking other releases on the way.
    pub fn wait_released(&mut self, handle: &PoolHandle) -> Result<()> {
        while self.holds(handle) {
            let m = self.recv()?;
            self.unexpected(m)?;
        }
        Ok(())
    }

    /// Takes every release that has arrived, without waiting; how many there were.
    pub fn poll(&mut self) -> Result<usize> {
        let mut n = 0;
        while readable(self.channel)? {
            let m = self.recv()?;
            self.unexpected(m)?;
            n += 1;
        }
        Ok(n)
    }

    fn holds(&self, handle: &PoolHandle) -> bool {
        self.pool.inner().holds(handle, self.consumer)
    }

    /// A release is applied; anything else in the middle of the pool protocol is an error.
    fn unexpected(&mut self, m: Message) -> Result<()> {
        match m {
            Message::PoolRelease(h) => self.pool.inner().release_holder(&h, self.consumer),
            Message::Verdict { ok: false, detail } => {
                Err(Error::Peer(format!("the consumer failed: {}", escape(&detail))))
            }
            other => Err(Error::Protocol(format!("{} in the middle of the pool protocol", other.name()))),
        }
    }

    /// Receives; a consumer that is gone releases everything it held at once.
    fn recv(&mut self) -> Result<Message> {
        match self.channel.recv() {
            Ok((m, fds)) if fds.is_empty() => Ok(m),
            Ok((m, _)) => Err(Error::Protocol(format!("{} came with descriptors", m.name()))),
            Err(e) => {
                if matches!(e, Error::Peer(_)) {
                    self.pool.forget_consumer(self.consumer);
                }
                Err(e)
            }
        }
    }
}

impl Drop for PoolLink<'_> {
    fn drop(&mut self) {
        self.pool.forget_consumer(self.consumer);
    }
}

fn readable(channel: &Channel) -> Result<bool> {
    let mut fds = [rustix::event::PollFd::new(channel, rustix::event::PollFlags::IN)];
    let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    let n = rustix::event::poll(&mut fds, Some(&zero))
        .map_err(|e| Error::Io { context: "poll".into(), source: e.into() })?;
    Ok(n > 0)
}

/// Consumer: it holds a bound resource (or a device pointer) for `handle`.
pub fn held(channel: &Channel, handle: &PoolHandle) -> Result<()> {
    channel.send(&Message::PoolHeld(*handle), &[])
}

/// Consumer: it released `handle` and no longer touches those bytes.
pub fn released(channel: &Channel, handle: &PoolHandle) -> Result<()> {
    channel.send(&Message::PoolRelease(*handle), &[])
}

/// Consumer: it refuses a hand-off or a block, saying why.
pub fn refused(channel: &Channel, why: &Error) -> Result<()> {
    channel.send(&Message::Verdict { ok: false, detail: why.to_string() }, &[])
}
