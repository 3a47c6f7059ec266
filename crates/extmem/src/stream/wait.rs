//! How a side waits for the other: polling a shared word, sleeping on it (a shared futex,
//! always with a timeout), or both in turn. Wakes are only sent to a side that said it sleeps,
//! so a polling pair makes no system call per frame. Every system call the stream makes on a
//! frame's path is counted ([`syscalls`]) for the benchmark.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// How a subscriber (or the publisher, for free slots) waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Wait {
    /// Busy-poll the shared ring: the lowest latency, one CPU core spent while waiting.
    Poll,
    /// Sleep on a shared futex at once: no CPU spent, the futex's wake-up latency paid.
    Sleep,
    /// Poll for a short while ([`SPIN`]), then sleep (the default).
    #[default]
    Adaptive,
}

/// How long [`Wait::Adaptive`] polls before it sleeps.
pub const SPIN: Duration = Duration::from_micros(50);

/// The longest single sleep: waits wake at least this often to look at the other side's
/// process and the control socket (so a death is noticed well within a second).
pub(crate) const SLICE: Duration = Duration::from_millis(20);

static SYSCALLS: AtomicU64 = AtomicU64::new(0);

/// System calls this process's streams made on their frame paths (futex waits and wakes,
/// liveness polls), since it started.
pub fn syscalls() -> u64 {
    SYSCALLS.load(Ordering::Relaxed)
}

pub(crate) fn count_syscall() {
    SYSCALLS.fetch_add(1, Ordering::Relaxed);
}

/// Sleeps while `word` holds `expected`, at most `timeout` (a shared futex: the word may be in
/// a mapping of another process's memfd, read-only here).
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    count_syscall();
    let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as _ };
    // SAFETY: FUTEX_WAIT reads the aligned 32-bit word (live for the call) and sleeps; the
    // timespec outlives the call. Errors (EAGAIN: the word changed, EINTR, ETIMEDOUT) all
    // mean "look again", which every caller does.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts as *const libc::timespec, 0, 0)
    };
}

/// Wakes every sleeper on `word`.
pub(crate) fn futex_wake(word: &AtomicU32) {
    count_syscall();
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0, 0, 0) };
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock of a frame's [`crate::stream::StreamFrame::timestamp`]).
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One waiter's state across the polls of one wait.
pub(crate) struct Waiter {
    wait: Wait,
    started: std::time::Instant,
    spins: u32,
}

impl Waiter {
    pub(crate) fn new(wait: Wait) -> Waiter {
        Waiter { wait, started: std::time::Instant::now(), spins: 0 }
    }

    /// Whether to sleep now (else poll once more).
    pub(crate) fn should_sleep(&mut self) -> bool {
        self.spins = self.spins.wrapping_add(1);
        match self.wait {
            Wait::Poll => false,
            Wait::Sleep => true,
            Wait::Adaptive => self.spins > 64 && self.started.elapsed() > SPIN,
        }
    }

    /// Whether a poll should look at the slow conditions (death, socket) now: every 1024
    /// spins, which costs only a clock read.
    pub(crate) fn check_due(&self) -> bool {
        self.spins % 1024 == 0
    }
}
