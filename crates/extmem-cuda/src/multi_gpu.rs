//! Hosts with several GPUs: which GPU a pointer's memory is on, and memory of one GPU for a
//! consumer on another.
//!
//! An opaque fd imports only on the device that exported it (Vulkan specification, "External
//! Memory Handle Types Compatibility": `OPAQUE_FD` requires the same device UUID and driver
//! UUID). A consumer whose own GPU is another one therefore either imports on the owning GPU
//! and copies the bytes peer to peer (`cuMemcpyPeerAsync`, over NVLink or PCIe) into memory on
//! its own GPU ([`PeerImport`]), or stages them through host memory ([`HostStaging`]).

use crate::{hex, CuCall, Cuda, CudaMemory, DeviceAllocation, Error, Result};
use cudarc::driver::{sys, CudaContext, DriverError};
use extmem::Descriptor;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The CUDA device ordinal of the memory `ptr` points into (in this process's numbering,
/// which `CUDA_VISIBLE_DEVICES` reorders).
pub fn pointer_device_ordinal(ctx: &CudaContext, ptr: sys::CUdeviceptr) -> Result<usize> {
    ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
    let mut ordinal: std::ffi::c_int = -1;
    // SAFETY: DEVICE_ORDINAL writes one int; `ptr` is only looked up, not dereferenced.
    unsafe {
        sys::cuPointerGetAttribute(
            (&mut ordinal as *mut std::ffi::c_int).cast(),
            sys::CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
            ptr,
        )
    }
    .result()
    .cu("cuPointerGetAttribute(DEVICE_ORDINAL)")?;
    usize::try_from(ordinal).map_err(|_| Error::Import(format!("CUDA gave device ordinal {ordinal}")))
}

/// The UUID of the device whose memory `ptr` points into.
pub fn pointer_device_uuid(ctx: &CudaContext, ptr: sys::CUdeviceptr) -> Result<[u8; 16]> {
    let ordinal = pointer_device_ordinal(ctx, ptr)?;
    crate::device_uuids()?
        .get(ordinal)
        .copied()
        .ok_or_else(|| Error::Import(format!("a pointer on CUDA device {ordinal}, which CUDA does not list")))
}

impl CudaMemory {
    /// The UUID of the GPU this memory is on, as CUDA places the device pointer.
    pub fn device_uuid(&self) -> Result<[u8; 16]> {
        pointer_device_uuid(&self.ctx, self.ptr)
    }

    /// Checks that the imported memory is on the GPU the descriptor names: the pointer's device
    /// (`cuPointerGetAttribute`, device ordinal) has the descriptor's device UUID.
    pub fn check_device(&self, desc: &Descriptor) -> Result<()> {
        let on = self.device_uuid()?;
        if on != desc.device_uuid {
            return Err(Error::WrongDevice(format!(
                "the imported memory is on GPU {}, its descriptor names GPU {}",
                hex(&on),
                hex(&desc.device_uuid)
            )));
        }
        Ok(())
    }
}

/// The error for memory of GPU `owner` that a consumer on GPU `consumer` cannot import.
pub(crate) fn other_gpu(owner: &[u8; 16], consumer: &[u8; 16], why: &str) -> Error {
    Error::OtherGpu(format!("the memory is on GPU {} and this consumer is on GPU {}: {why}", hex(owner), hex(consumer)))
}

/// Memory of another GPU, imported where it lives and copied peer to peer into memory of the
/// consumer's GPU on demand.
pub struct PeerImport {
    owner: Cuda,
    imported: CudaMemory,
    local: DeviceAllocation,
    consumer_ctx: Arc<CudaContext>,
    peer_access: bool,
}

impl Cuda {
    /// Imports memory of another GPU for a consumer on this one: the fd is imported on the
    /// owning GPU (which this process must see), and [`PeerImport::copy`] brings the bytes
    /// into an allocation on this GPU. Fails, naming both GPUs, when the owning GPU is not
    /// visible here or when the memory is on this GPU already (use [`Cuda::import_memory`]:
    /// zero-copy).
    pub fn import_memory_peer(&self, desc: &Descriptor, fd: OwnedFd) -> Result<PeerImport> {
        if desc.handle_type != extmem::HandleType::OpaqueFd {
            return Err(Error::Import(format!("peer copies take opaque fds, not {}", desc.handle_type)));
        }
        if desc.device_uuid == self.uuid {
            return Err(Error::Import(format!(
                "the memory is on this consumer's GPU ({}): import it in place, zero-copy",
                hex(&self.uuid)
            )));
        }
        let owner = match Cuda::for_device_uuid(desc.device_uuid) {
            Ok(c) => c,
            Err(Error::NoMatchingDevice(_)) => {
                return Err(other_gpu(
                    &desc.device_uuid,
                    &self.uuid,
                    "this process cannot see the owning GPU, so it cannot import the memory there to copy it \
                     (make it visible in CUDA_VISIBLE_DEVICES, or share host memory instead)",
                ))
            }
            Err(e) => return Err(e),
        };
        let imported = owner.import_memory(desc, fd)?;
        let local = DeviceAllocation::new(self, imported.len())?;
        let peer_access = enable_peer_access(self.context(), owner.context())?;
        Ok(PeerImport { owner, imported, local, consumer_ctx: self.context().clone(), peer_access })
    }
}

/// Lets `consumer`'s context reach `owner`'s memory directly where the hardware can (NVLink or
/// PCIe peer to peer); `false` where it cannot (CUDA then stages peer copies itself).
fn enable_peer_access(consumer: &Arc<CudaContext>, owner: &Arc<CudaContext>) -> Result<bool> {
    let mut can: std::ffi::c_int = 0;
    // SAFETY: two valid devices and an output int.
    unsafe { sys::cuDeviceCanAccessPeer(&mut can, consumer.cu_device(), owner.cu_device()) }
        .result()
        .cu("cuDeviceCanAccessPeer")?;
    if can == 0 {
        return Ok(false);
    }
    for (from, to) in [(consumer, owner), (owner, consumer)] {
        from.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: a live context, flags 0 as documented.
        match unsafe { sys::cuCtxEnablePeerAccess(to.cu_ctx(), 0) }.result() {
            Ok(()) | Err(DriverError(sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)) => {}
            Err(e) => return Err(Error::Cuda { call: "cuCtxEnablePeerAccess", source: e }),
        }
    }
    Ok(true)
}

impl PeerImport {
    /// The CUDA context on the GPU that owns the memory (import semaphores here: their waits
    /// and signals order [`PeerImport::copy`], which runs on this context's stream).
    pub fn owner(&self) -> &Cuda {
        &self.owner
    }
    /// The memory as imported on the owning GPU (zero-copy there).
    pub fn imported(&self) -> &CudaMemory {
        &self.imported
    }
    /// The copy on the consumer's GPU.
    pub fn local(&self) -> &DeviceAllocation {
        &self.local
    }
    /// Whether the two GPUs reach each other directly (NVLink or PCIe peer to peer).
    pub fn peer_access(&self) -> bool {
        self.peer_access
    }

    /// Queues the copy of the whole memory into [`PeerImport::local`] on the owner's stream
    /// (after whatever waits were queued there); [`Cuda::synchronize`] on [`PeerImport::owner`]
    /// waits for it.
    pub fn copy(&self) -> Result<()> {
        self.owner.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: both ranges hold `len` bytes of live allocations of the two contexts; the
        // copy is ordered on the owner's stream, which is waited for before either is freed.
        unsafe {
            sys::cuMemcpyPeerAsync(
                self.local.device_ptr(),
                self.consumer_ctx.cu_ctx(),
                self.imported.device_ptr(),
                self.owner.context().cu_ctx(),
                self.imported.len(),
                self.owner.stream().cu_stream(),
            )
        }
        .result()
        .cu("cuMemcpyPeerAsync")
    }
}

impl DeviceAllocation {
    /// The UUID of the GPU this allocation is on.
    pub fn device_uuid(&self) -> Result<[u8; 16]> {
        pointer_device_uuid(self.context(), self.device_ptr())
    }
}

/// Pinned host memory for the copying baseline: device → host on one GPU, host → device on
/// another.
pub struct HostStaging {
    ptr: *mut std::ffi::c_void,
    len: usize,
    ctx: Arc<CudaContext>,
}

impl HostStaging {
    /// `len` bytes of page-locked host memory that every context can use (`PORTABLE`).
    pub fn new(cuda: &Cuda, len: usize) -> Result<HostStaging> {
        cuda.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: an output pointer; freed on drop.
        unsafe { sys::cuMemHostAlloc(&mut ptr, len, sys::CU_MEMHOSTALLOC_PORTABLE) }.result().cu("cuMemHostAlloc")?;
        Ok(HostStaging { ptr, len, ctx: cuda.context().clone() })
    }

    /// Copies `src` (on `from`'s GPU) to the host, then into `dst` (on `to`'s GPU), waiting
    /// for each half.
    pub fn copy(&self, from: &Cuda, src: &CudaMemory, to: &Cuda, dst: &DeviceAllocation) -> Result<()> {
        let len = src.len();
        if len > self.len || len > dst.len() {
            return Err(Error::Import(format!("{len} bytes through {} bytes of staging into {}", self.len, dst.len())));
        }
        from.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: `len` bytes each side; the stream is waited for before the next step.
        unsafe { sys::cuMemcpyDtoHAsync_v2(self.ptr, src.device_ptr(), len, from.stream().cu_stream()) }
            .result()
            .cu("cuMemcpyDtoHAsync")?;
        from.synchronize()?;
        to.context().bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: as above.
        unsafe { sys::cuMemcpyHtoDAsync_v2(dst.device_ptr(), self.ptr, len, to.stream().cu_stream()) }
            .result()
            .cu("cuMemcpyHtoDAsync")?;
        to.synchronize()
    }
}

impl Drop for HostStaging {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: allocated in `new`; every copy waited for its stream.
        unsafe { sys::cuMemFreeHost(self.ptr) };
    }
}
