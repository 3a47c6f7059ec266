//! The machine's own floor for a same-host hand-off, measured between two processes (a child
//! forked for the purpose): a futex wait/wake round trip on a shared word, a busy-polled round
//! trip on a shared word, and a `SOCK_SEQPACKET` round trip. Each runs `n` round trips and
//! returns their durations in nanoseconds.

use super::wait::{futex_wait, futex_wake};
use crate::error::{Error, IoResultExt, Result};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// An anonymous shared mapping of `words` 64-bit words, inherited by forked children.
pub(crate) struct SharedWords {
    ptr: *mut u64,
    words: usize,
}

impl SharedWords {
    pub(crate) fn new(words: usize) -> Result<SharedWords> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh anonymous shared mapping, unmapped on drop.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                words * 8,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }
        .io(|| "mmap of the benchmark's shared words".into())?;
        Ok(SharedWords { ptr: ptr.cast(), words })
    }
    pub(crate) fn u64(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(i < self.words);
        // SAFETY: in bounds, aligned, shared memory accessed atomically only.
        unsafe { &*self.ptr.add(i).cast::<std::sync::atomic::AtomicU64>() }
    }
    pub(crate) fn u32(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.words);
        // SAFETY: as above (the low half of word `i`).
        unsafe { &*self.ptr.add(i).cast::<AtomicU32>() }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: mapped by `new`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.words * 8) };
    }
}

/// Forks a child that runs `child` and exits; the child's pid. The child must not use
/// anything that needs another thread of this process (it has none).
pub(crate) fn fork_child(child: impl FnOnce()) -> Result<libc::pid_t> {
    // SAFETY: fork; the child runs `child` (no locks of other threads are taken by the
    // benchmark's children: shared words, sockets, the stream's subscriber) and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::Io { context: "fork".into(), source: std::io::Error::last_os_error() });
    }
    if pid == 0 {
        child();
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    Ok(pid)
}

/// Waits for a forked child.
pub(crate) fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// `n` round trips through two shared words, each side sleeping on a futex (`sleep`) or
/// polling.
pub(crate) fn word_round_trips(n: usize, sleep: bool) -> Result<Vec<u64>> {
    let words = SharedWords::new(2)?;
    let (ping, pong) = (words.u32(0), words.u32(1));
    let wait_for = |w: &AtomicU32, v: u32| {
        while w.load(Ordering::Acquire) != v {
            if sleep {
                futex_wait(w, v.wrapping_sub(1), Duration::from_millis(100));
            } else {
                std::hint::spin_loop();
            }
        }
    };
    let child = fork_child(|| {
        for i in 1..=n as u32 {
            wait_for(ping, i);
            pong.store(i, Ordering::Release);
            if sleep {
                futex_wake(pong);
            }
        }
    })?;
    let mut out = Vec::with_capacity(n);
    for i in 1..=n as u32 {
        let t = Instant::now();
        ping.store(i, Ordering::Release);
        if sleep {
            futex_wake(ping);
        }
        wait_for(pong, i);
        out.push(t.elapsed().as_nanos() as u64);
    }
    reap(child);
    Ok(out)
}

/// `n` round trips of an 8-byte message over a `SOCK_SEQPACKET` socket pair.
pub(crate) fn socket_round_trips(n: usize) -> Result<Vec<u64>> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
    let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .io(|| "socketpair".into())?;
    let child = fork_child(|| {
        let mut buf = [0u8; 8];
        for _ in 0..n {
            if rustix::net::recv(&b, &mut buf, RecvFlags::empty()).is_err() {
                return;
            }
            let _ = rustix::net::send(&b, &buf, SendFlags::empty());
        }
    })?;
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 8];
    for i in 0..n as u64 {
        let t = Instant::now();
        rustix::net::send(&a, &i.to_le_bytes(), SendFlags::empty()).io(|| "send".into())?;
        rustix::net::recv(&a, &mut buf, RecvFlags::empty()).io(|| "recv".into())?;
        out.push(t.elapsed().as_nanos() as u64);
    }
    reap(child);
    Ok(out)
}
