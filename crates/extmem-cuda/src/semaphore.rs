//! A Vulkan semaphore seen by CUDA: streams wait on it and signal it.

use crate::{CuCall, Cuda, Result};
use cudarc::driver::{sys, CudaContext};
use extmem::sync::SemaphoreKind;
use std::sync::Arc;

/// A Vulkan semaphore (timeline, or binary as the fallback) seen by CUDA.
pub struct CudaSemaphore {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) sem: sys::CUexternalSemaphore,
    pub(crate) kind: SemaphoreKind,
}

impl CudaSemaphore {
    /// Timeline or binary.
    pub fn kind(&self) -> SemaphoreKind {
        self.kind
    }

    /// The value passed to CUDA: binary semaphores have none.
    fn value(&self, value: u64) -> u64 {
        if self.kind == SemaphoreKind::Timeline {
            value
        } else {
            0
        }
    }

    /// Makes work submitted to `cuda`'s stream after this call wait, on the GPU, until the
    /// semaphore reaches `value`.
    pub fn wait(&self, cuda: &Cuda, value: u64) -> Result<()> {
        // SAFETY: the crate's own live stream, of this semaphore's context.
        unsafe { self.wait_on(cuda.stream.cu_stream(), value) }
    }

    /// Signals `value` once the work submitted to `cuda`'s stream before this call is done.
    pub fn signal(&self, cuda: &Cuda, value: u64) -> Result<()> {
        // SAFETY: as in `wait`.
        unsafe { self.signal_on(cuda.stream.cu_stream(), value) }
    }

    /// [`CudaSemaphore::wait`] on a stream this crate did not create, such as PyTorch's
    /// current stream (`torch.cuda.current_stream().cuda_stream`): the GPU orders the
    /// stream's later work after the value, and no host thread waits.
    ///
    /// # Safety
    /// `stream` must be a live stream of this semaphore's context: the device's primary
    /// context, which [`Cuda`] and PyTorch both use (or the legacy default stream, null).
    pub unsafe fn wait_on(&self, stream: sys::CUstream, value: u64) -> Result<()> {
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: all-zero is valid; the value is set.
        let mut params: sys::CUDA_EXTERNAL_SEMAPHORE_WAIT_PARAMS = unsafe { std::mem::zeroed() };
        params.params.fence.value = self.value(value);
        // SAFETY: a live semaphore, one parameter set, a live stream (the caller's promise).
        unsafe { sys::cuWaitExternalSemaphoresAsync(&self.sem, &params, 1, stream) }
            .result()
            .cu("cuWaitExternalSemaphoresAsync")
    }

    /// [`CudaSemaphore::signal`] on a stream this crate did not create: `value` is signalled
    /// once the work queued on `stream` before this call is done.
    ///
    /// # Safety
    /// As for [`CudaSemaphore::wait_on`].
    pub unsafe fn signal_on(&self, stream: sys::CUstream, value: u64) -> Result<()> {
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: all-zero is valid; the value is set.
        let mut params: sys::CUDA_EXTERNAL_SEMAPHORE_SIGNAL_PARAMS = unsafe { std::mem::zeroed() };
        params.params.fence.value = self.value(value);
        // SAFETY: a live semaphore, one parameter set, a live stream (the caller's promise).
        unsafe { sys::cuSignalExternalSemaphoresAsync(&self.sem, &params, 1, stream) }
            .result()
            .cu("cuSignalExternalSemaphoresAsync")
    }
}

impl Drop for CudaSemaphore {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: imported in `import_semaphore`; streams using it were synchronised by the
        // caller's last `synchronize`.
        unsafe {
            let _ = sys::cuDestroyExternalSemaphore(self.sem);
        }
    }
}
