//! The steps of an import, timed (for benchmarks that must show where an import's time goes).

use std::time::Instant;

/// Nanoseconds spent in each step of [`super::SharedMemory::import_with_steps`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportSteps {
    /// The checks before the driver is asked (extension, UUIDs, format support).
    pub checks_ns: u64,
    /// `vkCreateBuffer` / `vkCreateImage` and the memory requirements.
    pub create_resource_ns: u64,
    /// `vkAllocateMemory` with `VkImportMemoryFdInfoKHR`: the driver's import.
    pub allocate_ns: u64,
    /// `vkBindBufferMemory` / `vkBindImageMemory`.
    pub bind_ns: u64,
}

pub(super) struct Clock(Instant);

impl Clock {
    /// Nanoseconds since the last lap.
    pub(super) fn lap(&mut self) -> u64 {
        let now = Instant::now();
        let ns = now.duration_since(self.0).as_nanos() as u64;
        self.0 = now;
        ns
    }
}

impl ImportSteps {
    pub(super) fn clock(&self) -> Clock {
        Clock(Instant::now())
    }
}
