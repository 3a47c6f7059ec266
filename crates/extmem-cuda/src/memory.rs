//! Vulkan memory seen by CUDA: a device pointer into an imported opaque fd, or host pages
//! registered with CUDA.

use crate::{CuCall, Cuda, Error, Result};
use cudarc::driver::{sys, CudaContext};
use std::sync::Arc;

/// Vulkan memory seen by CUDA as a device pointer. Dropping it unmaps it and releases the
/// import (the Vulkan side keeps its own memory).
pub struct CudaMemory {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) backing: Backing,
    pub(crate) ptr: sys::CUdeviceptr,
    pub(crate) len: usize,
}

/// What a [`CudaMemory`] releases on drop.
pub(crate) enum Backing {
    /// An imported opaque fd, mapped as a buffer.
    External(sys::CUexternalMemory),
    /// Host pages registered with CUDA (unregistered, then unmapped).
    Host(extmem::host::HostMapping),
}

impl CudaMemory {
    /// The device pointer (at the resource's offset in the allocation).
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }
    /// The mapped length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the mapping is empty (never, for a valid import).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the bytes to the host on `cuda`'s stream and waits for them.
    pub fn to_host(&self, cuda: &Cuda) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.len];
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: `out` holds `len` bytes; the device range is mapped; we wait before returning.
        unsafe { sys::cuMemcpyDtoHAsync_v2(out.as_mut_ptr().cast(), self.ptr, self.len, cuda.stream.cu_stream()) }
            .result()
            .cu("cuMemcpyDtoHAsync")?;
        cuda.synchronize()?;
        Ok(out)
    }

    /// Copies `bytes` from the host into the memory on `cuda`'s stream and waits.
    pub fn from_host(&self, cuda: &Cuda, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.len {
            return Err(Error::Import(format!("{} bytes into a {}-byte mapping", bytes.len(), self.len)));
        }
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: as in `to_host`.
        unsafe { sys::cuMemcpyHtoDAsync_v2(self.ptr, bytes.as_ptr().cast(), bytes.len(), cuda.stream.cu_stream()) }
            .result()
            .cu("cuMemcpyHtoDAsync")?;
        cuda.synchronize()
    }
}

impl Drop for CudaMemory {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: the mapping and import made in `import_memory`; the crate's operations wait
        // for their stream before returning, so nothing uses them now.
        unsafe {
            match &self.backing {
                Backing::External(ext) => {
                    let _ = sys::cuMemFree_v2(self.ptr);
                    let _ = sys::cuDestroyExternalMemory(*ext);
                }
                // The mapping itself is unmapped when `backing` drops, after this.
                Backing::Host(mapping) => {
                    let _ = sys::cuMemHostUnregister(mapping.ptr());
                }
            }
        }
    }
}

// SAFETY: the raw handles are driver objects; the CUDA driver API is thread-safe and every
// method binds the context before using them, so the mapping can move and be shared across
// threads (a DLPack deleter may run on any thread).
unsafe impl Send for CudaMemory {}
// SAFETY: as above; `&self` methods only read the handles.
unsafe impl Sync for CudaMemory {}
