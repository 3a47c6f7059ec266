//! The fast path: instead of an exported semaphore, Vulkan writes a frame counter into shared
//! memory after the frame, and a CUDA stream waits for it with `cuStreamWaitValue32`.
//!
//! Measured on an H100 (`bench/results/h100.md`), one crossing costs 22 µs this way and 24 µs
//! with the semaphore when the Vulkan submission runs on a transfer-only queue; from the
//! general queue both cost about 330 µs, which is the graphics/compute engine switching
//! between the Vulkan device's context and CUDA's, not the synchronisation (two CUDA contexts
//! alternating pay the same). In a frame loop the counter adds 6–8 µs per frame.
//!
//! Why it is correct: on the Vulkan side the frame's bytes and the counter are written by one
//! submission in this order, with a barrier between them that makes the frame's transfer writes
//! available (srcAccess TRANSFER_WRITE) and releases the frame's memory to
//! `VK_QUEUE_FAMILY_EXTERNAL` before the counter is written
//! ([`extmem::Handoff::counter`]). A CUDA stream that has seen the counter
//! reach `n` has therefore been preceded, in device order, by the availability of frame `n`'s
//! bytes; `cuStreamWaitValue32` orders the stream's later work after that observation (flag
//! `CU_STREAM_WAIT_VALUE_FLUSH` where the device needs it to flush remote writes). The stress
//! test checks every byte of every frame.

use crate::{CuCall, Cuda, CudaMemory, Result};
use cudarc::driver::sys;

/// Makes a CUDA stream wait for a 32-bit counter in imported memory.
pub trait CounterWait {
    /// Work submitted to `cuda`'s stream after this waits until the counter at byte `offset`
    /// of this memory is at least `value` (wrapping comparison is not used: values only grow).
    fn wait_counter(&self, cuda: &Cuda, offset: usize, value: u32) -> Result<()>;
}

impl CounterWait for CudaMemory {
    fn wait_counter(&self, cuda: &Cuda, offset: usize, value: u32) -> Result<()> {
        assert!(offset + 4 <= self.len(), "counter outside the mapping");
        cuda.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        let flags = sys::CUstreamWaitValue_flags::CU_STREAM_WAIT_VALUE_GEQ as u32;
        // SAFETY: a live stream and a 4-byte aligned address inside the mapping.
        unsafe {
            sys::cuStreamWaitValue32_v2(cuda.stream().cu_stream(), self.device_ptr() + offset as u64, value, flags)
        }
        .result()
        .cu("cuStreamWaitValue32")
    }
}
