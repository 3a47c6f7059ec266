//! Listeners and channels: the Unix `SOCK_SEQPACKET` transport of docs/src/protocol.md §1
//! (0700 folder, 0600 sockets, `SO_PEERCRED`, close-on-exec), its messages with their fds, and
//! the `Share` / `Verdict` exchange in one call each way.

use crate::convert::{c_str, input, out_handle, output};
use crate::handles::{self, handle};
use crate::message::{self, extmem_message};
use crate::status::{extmem_status, guard, guard_value, CResult, Failure};
use extmem_rs::transport::socket::socket_dir;
use extmem_rs::transport::{Channel, Listener, Message};
use std::ffi::{c_char, c_int, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A listening socket; its file is removed when it is destroyed. Thread-safe.
pub struct extmem_listener {
    _private: [u8; 0],
}
handle!(extmem_listener => ListenerObj);

/// One end of a connection. Thread-safe: sends and receives from several threads do not
/// corrupt each other, though the protocol's order is the callers' to keep. Objects that use
/// it (`extmem_pool_link`) keep it open.
pub struct extmem_channel {
    _private: [u8; 0],
}
handle!(extmem_channel => ChannelObj);

pub(crate) struct ListenerObj {
    listener: Listener,
    path: CString,
}

pub(crate) struct ChannelObj {
    pub(crate) channel: Channel,
}

/// How a channel behaves. All zero but `struct_size` is the default.
#[repr(C)]
pub struct extmem_channel_options {
    /// `sizeof(extmem_channel_options)`.
    pub struct_size: u32,
    /// How long a receive waits before `EXTMEM_ERROR_PEER`, in nanoseconds; 0: 30 s.
    pub timeout_ns: u64,
}

/// # Safety
/// A non-null `options` points to the caller's struct.
unsafe fn channel(mut channel: Channel, options: *const extmem_channel_options) -> CResult<*mut extmem_channel> {
    if !options.is_null() {
        // SAFETY: the caller's struct.
        let o = unsafe { input(options, "options") }?;
        if o.timeout_ns != 0 {
            channel.set_timeout(Duration::from_nanos(o.timeout_ns));
        }
    }
    Ok(handles::insert::<extmem_channel>(ChannelObj { channel }))
}

/// Binds a listening socket at `path`, or, with `path` NULL, at a new name in extmem's socket
/// folder (`$XDG_RUNTIME_DIR/extmem`, else `/tmp/extmem-<uid>`; made 0700 when missing, refused
/// otherwise). The socket file is mode 0600.
#[no_mangle]
pub unsafe extern "C" fn extmem_listener_bind(path: *const c_char, out: *mut *mut extmem_listener) -> extmem_status {
    guard("extmem_listener_bind", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let path = if path.is_null() {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            socket_dir().join(format!("capi-{}-{n}.sock", std::process::id()))
        } else {
            // SAFETY: a NUL-terminated string of the caller's.
            PathBuf::from(unsafe { c_str(path, "path") }?)
        };
        let listener = Listener::bind(&path)?;
        let path = CString::new(path.to_string_lossy().into_owned()).map_err(|_| Failure::arg("path holds a NUL"))?;
        *out = handles::insert::<extmem_listener>(ListenerObj { listener, path });
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The socket file's path: valid while the listener lives. NULL for a bad handle.
#[no_mangle]
pub unsafe extern "C" fn extmem_listener_path(listener: *const extmem_listener) -> *const c_char {
    guard_value("extmem_listener_path", std::ptr::null(), || {
        let l = handles::get(listener)?;
        // The string lives in the object, which the registry keeps until destroy.
        Ok(l.path.as_ptr())
    })
}

/// Waits up to `timeout_ns` for a peer and accepts it if it runs as the same user.
/// `options`: NULL for the defaults.
#[no_mangle]
pub unsafe extern "C" fn extmem_listener_accept(
    listener: *mut extmem_listener,
    timeout_ns: u64,
    options: *const extmem_channel_options,
    out: *mut *mut extmem_channel,
) -> extmem_status {
    guard("extmem_listener_accept", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let l = handles::get(listener)?;
        let c = l.listener.accept(Duration::from_nanos(timeout_ns))?;
        // SAFETY: the caller's struct, if any.
        *out = unsafe { channel(c, options) }?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Destroys the listener and removes its socket file. Channels it accepted stay open.
#[no_mangle]
pub unsafe extern "C" fn extmem_listener_destroy(listener: *mut extmem_listener) {
    guard("extmem_listener_destroy", || {
        handles::remove(listener)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// Connects to a listener at `path`, which must run as the same user. `options`: NULL for
/// the defaults.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_connect(
    path: *const c_char,
    options: *const extmem_channel_options,
    out: *mut *mut extmem_channel,
) -> extmem_status {
    guard("extmem_channel_connect", || {
        // SAFETY: the caller's pointers.
        let (out, path) = unsafe { (out_handle(out, "out")?, c_str(path, "path")?) };
        let c = Channel::connect(std::path::Path::new(path))?;
        // SAFETY: the caller's struct, if any.
        *out = unsafe { channel(c, options) }?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The connected socket, to poll beside other descriptors: borrowed, owned by the channel
/// (never close it). -1 for a bad handle.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_fd(ch: *const extmem_channel) -> c_int {
    guard_value("extmem_channel_fd", -1, || Ok(handles::get(ch)?.channel.as_fd().as_raw_fd()))
}

/// Sends one message. A message type that carries a descriptor takes `message->fd`, borrowed
/// (the caller still owns it); the others must have `fd` -1. The message is checked by the
/// protocol's decoding rules first (`EXTMEM_ERROR_INVALID_DESCRIPTION` naming the field), so
/// nothing malformed leaves.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_send(ch: *mut extmem_channel, message: *const extmem_message) -> extmem_status {
    guard("extmem_channel_send", || {
        let c = handles::get(ch)?;
        // SAFETY: the caller's struct.
        let m = unsafe { input(message, "message") }?;
        let msg = message::to_message(m)?;
        let wire = Message::decode(&msg.encode()).map_err(|e| {
            Failure::new(extmem_status::EXTMEM_ERROR_INVALID_DESCRIPTION, format!("the message would be refused: {e}"))
        })?;
        match (wire.fd_count(), m.fd) {
            (0, -1) => c.channel.send(&wire, &[])?,
            (0, fd) => {
                return Err(Failure::arg(format!("{} carries no descriptor; message->fd is {fd}, not -1", wire.name())))
            }
            (_, fd) if fd < 0 => {
                return Err(Failure::arg(format!("{} carries a descriptor; message->fd is {fd}", wire.name())))
            }
            (_, fd) => {
                // SAFETY: F_GETFD only reads; an open descriptor is borrowed for the call.
                if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                    return Err(Failure::arg(format!("message->fd {fd} is not an open file descriptor")));
                }
                // SAFETY: open (checked just now) and the caller's for the duration of the call.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                c.channel.send(&wire, &[fd])?
            }
        }
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Receives one message, checked by the protocol's rules (a malformed one is
/// `EXTMEM_ERROR_PROTOCOL` and its descriptors are closed), waiting at most the channel's
/// timeout (`EXTMEM_ERROR_PEER`, as for a closed connection). Every message is returned as it
/// is, `Bye` and `Verdict` included. A received `out->fd` belongs to the caller.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_recv(ch: *mut extmem_channel, out: *mut extmem_message) -> extmem_status {
    guard("extmem_channel_recv", || {
        let c = handles::get(ch)?;
        // SAFETY: the caller's struct.
        let out = unsafe { output(out, "out") }?;
        let (m, mut fds) = c.channel.recv()?;
        let fd = fds.pop().map_or(-1, |fd| fd.into_raw_fd());
        message::fill(out, &m, fd);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Producer: exports `memory`, sends it (`Share`, the fd closed here after sending) and waits
/// for the consumer's `Verdict`: `EXTMEM_OK` when it imported it, `EXTMEM_ERROR_PEER_REFUSED`
/// with its reason when it refused.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_share_memory(
    ch: *mut extmem_channel,
    memory: *const crate::memory::extmem_memory,
) -> extmem_status {
    guard("extmem_channel_share_memory", || {
        let c = handles::get(ch)?;
        let m = crate::memory::get(memory)?;
        let (desc, fd) = m.export()?;
        c.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
        drop(fd);
        expect_verdict(&c.channel)
    })
}

fn expect_verdict(c: &Channel) -> CResult<extmem_status> {
    match c.recv()? {
        (Message::Verdict { ok: true, .. }, _) => Ok(extmem_status::EXTMEM_OK),
        (Message::Verdict { ok: false, detail }, _) => Err(Failure::new(
            extmem_status::EXTMEM_ERROR_PEER_REFUSED,
            format!("the peer refused it: {}", detail.escape_debug()),
        )),
        (other, _) => {
            Err(Failure::new(extmem_status::EXTMEM_ERROR_PROTOCOL, format!("expected a Verdict, got {}", other.name())))
        }
    }
}

/// Consumer: receives a `Share`, imports it with every check (`extmem_memory_import`), and
/// answers with a `Verdict`: ok, or the reason it refused (then the error is returned too).
/// `EXTMEM_END_OF_STREAM` when the producer said `Bye` instead.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_accept_memory(
    ch: *mut extmem_channel,
    ctx: *mut crate::context::extmem_context,
    out: *mut *mut crate::memory::extmem_memory,
) -> extmem_status {
    guard("extmem_channel_accept_memory", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let c = handles::get(ch)?;
        let ctx = crate::context::get(ctx)?;
        let (desc, fd) = match c.channel.recv()? {
            (Message::Share(d), mut fds) => (d, fds.pop().ok_or_else(|| Failure::arg("no fd"))?),
            (Message::Bye, _) => return Ok(extmem_status::EXTMEM_END_OF_STREAM),
            (Message::Verdict { ok: false, detail }, _) => {
                return Err(Failure::new(
                    extmem_status::EXTMEM_ERROR_PEER_REFUSED,
                    format!("the peer reports a failure: {}", detail.escape_debug()),
                ))
            }
            (other, _) => {
                let f =
                    Failure::new(extmem_status::EXTMEM_ERROR_PROTOCOL, format!("expected Share, got {}", other.name()));
                let _ = c.channel.send(&Message::Verdict { ok: false, detail: f.message.clone() }, &[]);
                return Err(f);
            }
        };
        match crate::import::memory(&ctx, &desc, fd) {
            Ok(m) => {
                c.channel.send(&Message::Verdict { ok: true, detail: "imported".into() }, &[])?;
                *out = crate::memory::insert(m);
                Ok(extmem_status::EXTMEM_OK)
            }
            Err(f) => {
                let _ = c.channel.send(&Message::Verdict { ok: false, detail: f.message.clone() }, &[]);
                Err(f)
            }
        }
    })
}

/// Producer: exports `semaphore` and sends it (`ShareSemaphore`); from then on the frame
/// protocol's values order both sides' GPU work on it. The protocol has no answer to it.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_share_semaphore(
    ch: *mut extmem_channel,
    semaphore: *const crate::semaphore::extmem_semaphore,
) -> extmem_status {
    guard("extmem_channel_share_semaphore", || {
        let c = handles::get(ch)?;
        let s = crate::semaphore::get_optional(semaphore)?
            .ok_or_else(|| Failure::new(extmem_status::EXTMEM_ERROR_INVALID_HANDLE, "extmem_semaphore is NULL"))?;
        let fd = s.export()?;
        c.channel.send(&Message::ShareSemaphore, &[fd.as_fd()])?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Sends `Bye`: this side is done and will close the connection.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_bye(ch: *mut extmem_channel) -> extmem_status {
    guard("extmem_channel_bye", || {
        handles::get(ch)?.channel.send(&Message::Bye, &[])?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Drops the application's reference; the socket is closed when nothing else uses it.
#[no_mangle]
pub unsafe extern "C" fn extmem_channel_destroy(ch: *mut extmem_channel) {
    guard("extmem_channel_destroy", || {
        handles::remove(ch)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// Resolves a channel handle (for the other modules).
pub(crate) fn get(ch: *const extmem_channel) -> CResult<Arc<ChannelObj>> {
    handles::get(ch)
}
