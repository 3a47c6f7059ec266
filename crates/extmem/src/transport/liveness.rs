//! Noticing a peer process that is gone: a pidfd (Linux 5.3 and later) becomes readable when
//! its process exits, so a wait for the peer's next message (or its connection) also wakes on
//! its death, instead of running into the timeout.

use crate::error::{Error, IoResultExt, Result};
use rustix::event::{PollFd, PollFlags};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// A process whose exit ends waits on its messages (see [`crate::transport::Channel::watch`]).
#[derive(Debug)]
pub struct ProcessWatch {
    pidfd: OwnedFd,
    pid: u32,
}

impl ProcessWatch {
    /// Watches process `pid` (a child, or any process of this user).
    pub fn new(pid: u32) -> Result<ProcessWatch> {
        let raw = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw);
        let p = raw.ok_or_else(|| Error::Peer(format!("{pid} is not a process id")))?;
        let pidfd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
            .io(|| format!("pidfd_open of process {pid}"))?;
        Ok(ProcessWatch { pidfd, pid })
    }

    /// The watched process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
        matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }
}

/// Waits until `fd` is readable, failing when `timeout` passes first or `watch`'s process exits
/// while nothing is readable. `what` says what did not happen.
pub(crate) fn wait_readable(
    fd: BorrowedFd<'_>,
    watch: Option<&ProcessWatch>,
    timeout: Duration,
    what: &str,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = rustix::event::Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 };
        let mut fds = vec![PollFd::new(&fd, PollFlags::IN)];
        if let Some(w) = watch {
            fds.push(PollFd::new(&w.pidfd, PollFlags::IN));
        }
        let n = match rustix::event::poll(&mut fds, Some(&ts)) {
            Err(rustix::io::Errno::INTR) => continue,
            r => r.io(|| "poll".into())?,
        };
        if n == 0 {
            return Err(Error::Peer(format!("{what} within {:.1} s", timeout.as_secs_f64())));
        }
        if !fds[0].revents().is_empty() {
            return Ok(());
        }
        if let Some(w) = watch {
            return Err(Error::Peer(format!("{what}: the peer process {} exited", w.pid)));
        }
    }
}
