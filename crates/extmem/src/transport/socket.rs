//! A Unix `SOCK_SEQPACKET` socket that carries [`Message`]s with their file descriptors
//! (`SCM_RIGHTS`). Message boundaries are kept by the socket type, so a message and its
//! descriptors always arrive together.
//!
//! Safety rules: socket files are mode 0600 in a 0700 folder; the peer must run as the same
//! user (`SO_PEERCRED`); every descriptor is close-on-exec (`SOCK_CLOEXEC`, `MSG_CMSG_CLOEXEC`);
//! descriptors received with a message that is then rejected are closed before returning.

use crate::desc::Descriptor;
use crate::error::{Error, IoResultExt, Result};
use crate::transport::liveness::{wait_readable, ProcessWatch};
use crate::transport::message::{Message, MAX_MESSAGE};
use rustix::fs::Mode;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a receive waits by default before saying the peer is gone.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most descriptors one message may carry.
const MAX_FDS: usize = 4;

/// The folder extmem puts its sockets in: `$XDG_RUNTIME_DIR/extmem`, else
/// `/tmp/extmem-<uid>`.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("extmem"),
        _ => std::env::temp_dir().join(format!("extmem-{}", rustix::process::getuid().as_raw())),
    }
}

/// A listening socket; the file is removed when it is dropped.
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl Listener {
    /// Binds a socket at `path` (mode 0600). Its folder must be this user's and mode 0700 (it is
    /// made so when missing; see [`crate::transport::private_dir`]); sockets that killed
    /// processes left there are removed first.
    pub fn bind(path: &Path) -> Result<Listener> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::transport::private_dir::ensure(dir)?;
            crate::transport::private_dir::sweep_stale(dir);
        }
        if path.exists() {
            return Err(Error::Io {
                context: format!("binding {}", path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the socket file exists: another extmem process uses it, or a crashed one left it (remove it)",
                ),
            });
        }
        let fd = seqpacket()?;
        let addr = SocketAddrUnix::new(path).io(|| format!("socket path {}", path.display()))?;
        net::bind(&fd, &addr).io(|| format!("binding {}", path.display()))?;
        let listener = Listener { fd, path: path.to_owned() };
        rustix::fs::chmod(path, Mode::from_raw_mode(0o600)).io(|| format!("chmod 0600 {}", path.display()))?;
        net::listen(&listener.fd, 4).io(|| format!("listening on {}", path.display()))?;
        Ok(listener)
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits up to `timeout` for a peer and accepts it if it runs as the same user.
    pub fn accept(&self, timeout: Duration) -> Result<Channel> {
        self.accept_watching(timeout, None)
    }

    /// [`Listener::accept`] that also fails as soon as `watch`'s process (the peer that was
    /// started to connect) exits without connecting.
    pub fn accept_watching(&self, timeout: Duration, watch: Option<&ProcessWatch>) -> Result<Channel> {
        wait_readable(self.fd.as_fd(), watch, timeout, "no peer connected")?;
        let fd =
            net::accept_with(&self.fd, SocketFlags::CLOEXEC).io(|| format!("accepting on {}", self.path.display()))?;
        Channel::checked(fd)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn seqpacket() -> Result<OwnedFd> {
    net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .io(|| "creating a Unix seqpacket socket".into())
}

/// One end of a connection.
pub struct Channel {
    fd: OwnedFd,
    peer_pid: Option<i32>,
    timeout: Duration,
    watch: Option<ProcessWatch>,
}

impl Channel {
    /// Connects to a listener at `path`; the listener must run as the same user.
    pub fn connect(path: &Path) -> Result<Channel> {
        let fd = seqpacket()?;
        let addr = SocketAddrUnix::new(path).io(|| format!("socket path {}", path.display()))?;
        net::connect(&fd, &addr).io(|| format!("connecting to {} (is the producer running?)", path.display()))?;
        Channel::checked(fd)
    }

    /// Two connected ends (for one process, or a child that inherits one end).
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
            .io(|| "socketpair".into())?;
        Ok((Channel::checked(a)?, Channel::checked(b)?))
    }

    /// Wraps a connected seqpacket socket (for example one inherited from a parent), checking
    /// its peer.
    pub fn from_fd(fd: OwnedFd) -> Result<Channel> {
        Channel::checked(fd)
    }

    fn checked(fd: OwnedFd) -> Result<Channel> {
        let cred = net::sockopt::socket_peercred(&fd).io(|| "SO_PEERCRED".into())?;
        let me = rustix::process::getuid();
        if cred.uid != me {
            return Err(Error::Peer(format!(
                "peer process {} runs as uid {}, this one as uid {}: refusing to share memory across users",
                cred.pid.as_raw_nonzero(),
                cred.uid.as_raw(),
                me.as_raw()
            )));
        }
        let mut channel =
            Channel { fd, peer_pid: Some(cred.pid.as_raw_nonzero().get()), timeout: DEFAULT_TIMEOUT, watch: None };
        channel.apply_send_timeout()?;
        Ok(channel)
    }

    /// Sends wait at most the timeout too (`SO_SNDTIMEO`): a peer that never reads fills its
    /// receive queue, and a send would otherwise block forever.
    fn apply_send_timeout(&mut self) -> Result<()> {
        // A zero `SO_SNDTIMEO` means "never time out": the shortest wait is a millisecond; the
        // longest a year (what a `timeval` surely holds).
        let t = self.timeout.clamp(Duration::from_millis(1), Duration::from_secs(365 * 86400));
        net::sockopt::set_socket_timeout(&self.fd, net::sockopt::Timeout::Send, Some(t)).io(|| "SO_SNDTIMEO".into())
    }

    /// The peer's process id, as the kernel reported it at connection time.
    pub fn peer_pid(&self) -> Option<i32> {
        self.peer_pid
    }

    /// How long [`Channel::recv`] waits, and [`Channel::send`] waits for room in a peer's full
    /// receive queue (default 30 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        // The socket is ours and connected: setting an option on it fails only on a bad fd.
        let _ = self.apply_send_timeout();
    }

    /// Also ends waits as soon as `watch`'s process exits (a peer whose children keep the
    /// socket open, or that is stuck in dying, is noticed at once rather than at the timeout).
    pub fn watch(&mut self, watch: ProcessWatch) {
        self.watch = Some(watch);
    }

    /// Sends a message with exactly the descriptors it carries.
    pub fn send(&self, message: &Message, fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.len() != message.fd_count() {
            return Err(Error::Protocol(format!(
                "{} carries {} descriptor(s), {} given",
                message.name(),
                message.fd_count(),
                fds.len()
            )));
        }
        self.send_bytes(&message.encode(), fds)
    }

    /// Sends raw bytes with descriptors: for tools and tests that must speak the protocol
    /// wrongly on purpose. Use [`Channel::send`] otherwise.
    pub fn send_bytes(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(Error::Protocol(format!("{} descriptors do not fit one message", fds.len())));
        }
        let sent =
            net::sendmsg(&self.fd, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL).map_err(|e| match e {
                rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET => {
                    Error::Peer("the peer closed the connection".into())
                }
                rustix::io::Errno::AGAIN => Error::Peer(format!(
                    "the peer did not read its messages for {:?} (its receive queue is full): giving up on the send",
                    self.timeout
                )),
                e => Error::Io { context: "sending a message".into(), source: e.into() },
            })?;
        if sent != bytes.len() {
            return Err(Error::Peer(format!("sent {sent} of {} bytes", bytes.len())));
        }
        Ok(())
    }

    /// Receives one message and its descriptors, checking both; waits at most the timeout.
    pub fn recv(&self) -> Result<(Message, Vec<OwnedFd>)> {
        wait_readable(self.fd.as_fd(), self.watch.as_ref(), self.timeout, "the peer sent nothing")?;
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = net::recvmsg(&self.fd, &mut [IoSliceMut::new(&mut buf)], &mut control, RecvFlags::CMSG_CLOEXEC)
            .map_err(|e| match e {
                rustix::io::Errno::CONNRESET => Error::Peer("the peer closed the connection".into()),
                e => Error::Io { context: "receiving a message".into(), source: e.into() },
            })?;
        // Take ownership of every descriptor first: from here on, any early return closes them.
        let mut fds: Vec<OwnedFd> = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        if msg.bytes == 0 && fds.is_empty() {
            return Err(Error::Peer("the peer closed the connection".into()));
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(Error::Protocol(format!("more than {MAX_FDS} descriptors in one message")));
        }
        if msg.flags.contains(ReturnFlags::TRUNC) || msg.bytes > MAX_MESSAGE {
            return Err(Error::Protocol(format!("message over the limit of {MAX_MESSAGE} bytes")));
        }
        let message = Message::decode(&buf[..msg.bytes])?;
        if fds.len() != message.fd_count() {
            return Err(Error::Protocol(format!(
                "{} came with {} descriptor(s), it carries {}",
                message.name(),
                fds.len(),
                message.fd_count()
            )));
        }
        Ok((message, fds))
    }

    /// Receives a [`Message::Share`] and its descriptor.
    pub fn recv_share(&self) -> Result<(Descriptor, OwnedFd)> {
        match self.recv()? {
            (Message::Share(d), mut fds) => Ok((d, fds.pop().expect("checked by recv"))),
            (other, _) => Err(unexpected("Share", &other)),
        }
    }

    /// Receives a message that carries no descriptor, failing on `Bye` or a failed verdict.
    pub fn recv_plain(&self, expected: &str) -> Result<Message> {
        match self.recv()? {
            (Message::Verdict { ok: false, detail }, _) => {
                Err(Error::Peer(format!("the peer reports a failure: {}", crate::transport::text::escape(&detail))))
            }
            (Message::Bye, _) if expected != "Bye" => {
                Err(Error::Peer(format!("the peer said Bye while {expected} was due")))
            }
            (m, _) => Ok(m),
        }
    }
}

fn unexpected(wanted: &str, got: &Message) -> Error {
    match got {
        Message::Verdict { ok: false, detail } => {
            Error::Peer(format!("the peer reports a failure: {}", crate::transport::text::escape(detail)))
        }
        other => Error::Protocol(format!("expected {wanted}, got {}", other.name())),
    }
}

/// The connected socket (to hand to a child process, or to poll beside other descriptors).
impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The listening socket (to poll for a connection beside other descriptors).
impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::Channel;
    use crate::transport::message::Message;
    use std::time::Duration;

    #[test]
    fn a_peer_that_never_reads_ends_a_flood_in_a_clear_error() {
        let (mut a, _b) = Channel::pair().unwrap();
        a.set_timeout(Duration::from_millis(200));
        let flood = (0..1_000_000u64).map(|frame| a.send(&Message::FrameReady { frame }, &[])).find(|r| r.is_err());
        let e = flood.expect("the queue filled").unwrap_err().to_string();
        assert!(e.contains("did not read") && e.contains("200ms"), "{e}");
        // Any timeout is taken (a year at most for sends).
        a.set_timeout(Duration::MAX);
        a.set_timeout(Duration::ZERO);
        assert!(a.send(&Message::Bye, &[]).is_err(), "the queue is still full");
    }
}
