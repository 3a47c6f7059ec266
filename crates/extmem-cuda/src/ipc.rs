//! Memory CUDA allocates itself, and CUDA's own inter-process sharing of it
//! (`cuIpcGetMemHandle` / `cuIpcOpenMemHandle`): the baseline Vulkan → CUDA sharing is measured
//! against, and scratch memory for tests and benchmarks.

use crate::{CuCall, Cuda, Result};
use cudarc::driver::{sys, CudaContext};
use std::sync::Arc;

/// Device memory allocated by CUDA (`cuMemAlloc`), shareable through an IPC handle.
pub struct DeviceAllocation {
    ctx: Arc<CudaContext>,
    ptr: sys::CUdeviceptr,
    len: usize,
}

impl DeviceAllocation {
    /// Allocates `len` bytes with `cuMemAlloc`.
    pub fn new(cuda: &Cuda, len: usize) -> Result<DeviceAllocation> {
        cuda.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        let mut ptr = 0;
        // SAFETY: a plain device allocation, freed on drop.
        unsafe { sys::cuMemAlloc_v2(&mut ptr, len) }.result().cu("cuMemAlloc")?;
        Ok(DeviceAllocation { ctx: cuda.context().clone(), ptr, len })
    }

    /// The device pointer.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }
    /// The context the memory belongs to.
    pub(crate) fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the allocation is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `len` bytes from `src` into this allocation on `cuda`'s stream (asynchronous).
    pub fn copy_from(&self, cuda: &Cuda, src: sys::CUdeviceptr, len: usize) -> Result<()> {
        assert!(len <= self.len, "copy of {len} bytes into {}", self.len);
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: both ranges hold `len` device bytes; ordered on the stream.
        unsafe { sys::cuMemcpyDtoDAsync_v2(self.ptr, src, len, cuda.stream().cu_stream()) }
            .result()
            .cu("cuMemcpyDtoDAsync")
    }

    /// Waits for `cuda`'s stream, then copies the bytes to the host.
    pub fn to_host(&self, cuda: &Cuda) -> Result<Vec<u8>> {
        cuda.synchronize()?;
        let mut out = vec![0u8; self.len];
        // SAFETY: `len` bytes each side; synchronous.
        unsafe { sys::cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), self.ptr, self.len) }.result().cu("cuMemcpyDtoH")?;
        Ok(out)
    }

    /// A new IPC handle (64 opaque bytes another process opens).
    pub fn ipc_handle(&self) -> Result<[u8; 64]> {
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        let mut h = std::mem::MaybeUninit::<sys::CUipcMemHandle>::uninit();
        // SAFETY: a live allocation; the handle is written by the call.
        unsafe { sys::cuIpcGetMemHandle(h.as_mut_ptr(), self.ptr) }.result().cu("cuIpcGetMemHandle")?;
        // SAFETY: initialised by the successful call.
        let h = unsafe { h.assume_init() };
        Ok(h.reserved.map(|b| b as u8))
    }
}

impl Drop for DeviceAllocation {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: allocated by `new`.
        unsafe {
            let _ = sys::cuMemFree_v2(self.ptr);
        }
    }
}

/// Another process's allocation, opened from its IPC handle.
pub struct IpcMapping {
    ctx: Arc<CudaContext>,
    ptr: sys::CUdeviceptr,
}

impl IpcMapping {
    /// Opens an IPC handle.
    pub fn open(cuda: &Cuda, handle: [u8; 64]) -> Result<IpcMapping> {
        cuda.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        let h = sys::CUipcMemHandle { reserved: handle.map(|b| b as _) };
        let mut ptr = 0;
        let flags = sys::CUipcMem_flags::CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS as u32;
        // SAFETY: a handle from another process's `cuIpcGetMemHandle`.
        unsafe { sys::cuIpcOpenMemHandle_v2(&mut ptr, h, flags) }.result().cu("cuIpcOpenMemHandle")?;
        Ok(IpcMapping { ctx: cuda.context().clone(), ptr })
    }

    /// The device pointer.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }
}

impl Drop for IpcMapping {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: opened by `open`.
        unsafe {
            let _ = sys::cuIpcCloseMemHandle(self.ptr);
        }
    }
}
