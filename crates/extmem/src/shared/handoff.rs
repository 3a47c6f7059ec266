//! [`Handoff`]: how one piece of GPU work on shared memory is ordered with the other side.

use super::SharedMemory;
use crate::sync::SharedSemaphore;

/// How a read, write or fill of [`SharedMemory`] is ordered with the other side: one small
/// value instead of a method per synchronisation style.
///
/// - [`Handoff::host`] (the default): the host waits for this side's own fence; the caller then
///   tells the other side on the socket (what every driver can do, lavapipe included).
/// - [`Handoff::wait`] / [`Handoff::signal`]: the GPU waits for a value of a shared semaphore
///   before the work and signals one after it (timeline values; ignored for binary ones), so
///   the two sides' GPU work is ordered on the GPU.
/// - [`Handoff::counter`]: after the work's bytes are made available and released, the same
///   submission writes a 32-bit value into a second shared buffer (the counter fast path that
///   CUDA waits for with `cuStreamWaitValue32`). Writes and fills only.
///
/// [`crate::frames::FrameProtocol`] builds these for the frame protocol's values.
#[derive(Clone, Copy, Default)]
pub struct Handoff<'a> {
    pub(super) wait: Option<(&'a SharedSemaphore, u64)>,
    pub(super) signal: Option<(&'a SharedSemaphore, u64)>,
    pub(super) counter: Option<(&'a SharedMemory, u64, u32)>,
}

impl<'a> Handoff<'a> {
    /// No GPU-side wait or signal: the host waits for this side's own fence.
    pub fn host() -> Handoff<'a> {
        Handoff::default()
    }

    /// The GPU waits until `semaphore` reaches `value` before the work.
    pub fn wait(mut self, semaphore: &'a SharedSemaphore, value: u64) -> Self {
        self.wait = Some((semaphore, value));
        self
    }

    /// The GPU signals `value` on `semaphore` once the work is done.
    pub fn signal(mut self, semaphore: &'a SharedSemaphore, value: u64) -> Self {
        self.signal = Some((semaphore, value));
        self
    }

    /// After the work, writes `value` into the 4 bytes at `offset` of the buffer `counter`, in
    /// the same submission and only after the work's bytes are available and released.
    pub fn counter(mut self, counter: &'a SharedMemory, offset: u64, value: u32) -> Self {
        self.counter = Some((counter, offset, value));
        self
    }

    /// Merges `other` into this one: its wait, signal and counter replace this one's where set.
    pub fn and(mut self, other: Handoff<'a>) -> Self {
        self.wait = other.wait.or(self.wait);
        self.signal = other.signal.or(self.signal);
        self.counter = other.counter.or(self.counter);
        self
    }

    /// Whether the GPU waits or signals a semaphore (else only the host's fence orders it).
    pub fn on_gpu(&self) -> bool {
        self.wait.is_some() || self.signal.is_some()
    }
}

impl std::fmt::Debug for Handoff<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("wait", &self.wait.map(|(_, v)| v))
            .field("signal", &self.signal.map(|(_, v)| v))
            .field("counter", &self.counter.map(|(_, offset, value)| (offset, value)))
            .finish()
    }
}
