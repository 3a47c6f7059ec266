//! A. The first hand-off by size to a CUDA process, against CUDA IPC and pinned staging.

use crate::support::child::Peer;
use crate::support::error::cuda_as_extmem as cu;
use crate::support::timing::{median, monotonic_ns, ms_since};
use extmem::transport::Message;
use extmem::{
    Context, ContextOptions, Dedicated, PathKind,
};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::DeviceAllocation;
use extmem_cuda::Cuda;
use serde::Serialize;
use std::os::fd::AsFd;
use std::time::Instant;
use crate::bench::cuda::util::{buffer, check};


#[derive(Serialize)]
pub struct FirstHandOff {
    pub bytes: u64,
    pub vulkan_plain_ms: f64,
    pub vulkan_dedicated_ms: f64,
    /// CUDA IPC of one allocation opened again and again (the driver serves it from a cache).
    pub cuda_ipc_cached_ms: f64,
    /// CUDA IPC of a fresh `cuMemAlloc` allocation each time (never opened before).
    pub cuda_ipc_fresh_ms: f64,
    pub pinned_staging_ms: f64,
}



fn ack(peer: &Peer) -> extmem::Result<()> {
    match peer.channel.recv_plain("Verdict")? {
        Message::Verdict { ok: true, .. } => Ok(()),
        other => Err(extmem::Error::Protocol(format!("expected a verdict, got {other:?}"))),
    }
}

/// Pinned host memory.
struct Pinned(*mut std::ffi::c_void);
impl Pinned {
    fn new(len: usize) -> extmem::Result<Pinned> {
        let mut p = std::ptr::null_mut();
        // SAFETY: a pinned allocation, freed on drop.
        unsafe { sys::cuMemHostAlloc(&mut p, len, 0) }
            .result()
            .map_err(|e| cu(extmem_cuda::Error::Cuda { call: "cuMemHostAlloc", source: e }))?;
        Ok(Pinned(p))
    }
}
impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: allocated by `new`.
        unsafe { sys::cuMemFreeHost(self.0) };
    }
}

/// The first hand-offs of `sizes`, medians of `repeat`.
pub fn first_hand_off(sizes: &[u64], repeat: usize) -> extmem::Result<Vec<FirstHandOff>> {
    let ctx = Context::new(&ContextOptions::default().path(PathKind::Nv).app_name("extmem bench cuda"))?;
    let cuda = Cuda::for_vulkan(&ctx).map_err(cu)?;
    let peer = Peer::spawn(false, monotonic_ns(), &["--cuda", "--probe"])?;
    let mut out = Vec::new();
    // A size above the device's largest allocation is measured at that largest allocation
    // (NVIDIA's: 4 GiB less 2 MiB), as `bench pool` does.
    let max = extmem::limits::device_limits(&ctx).max_memory_allocation_size;
    let sizes: Vec<u64> = sizes.iter().map(|&s| s.min(max)).collect();
    // Warm-up, untimed: the first hand-off of a run pays for code and driver paths (CUDA's
    // import among them) that the next ones find ready, which landed in the first size's figures.
    let warm = buffer(&ctx, 64 << 10, Dedicated::Always)?;
    let (desc, fd) = warm.export()?;
    peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    drop(fd);
    ack(&peer)?;
    ack(&peer)?; // released
    for &size in &sizes {
        let len = size as usize;
        let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        // The last fresh allocation, freed once the consumer closed its mapping.
        let mut fresh_prev: Option<DeviceAllocation> = None;
        let plain = buffer(&ctx, size, Dedicated::Never)?;
        let dedicated = buffer(&ctx, size, Dedicated::Always)?;
        let ipc = DeviceAllocation::new(&cuda, len).map_err(cu)?;
        cuda.context()
            .bind_to_thread()
            .map_err(|e| cu(extmem_cuda::Error::Cuda { call: "cuCtxSetCurrent", source: e }))?;
        let pinned = Pinned::new(len)?;
        let target = DeviceAllocation::new(&cuda, len).map_err(cu)?;
        for _ in 0..repeat {
            for (i, shared) in [&plain, &dedicated].into_iter().enumerate() {
                let t = Instant::now();
                let (desc, fd) = shared.export()?;
                peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
                drop(fd);
                ack(&peer)?;
                times[i].push(ms_since(t));
                ack(&peer)?; // the consumer released the previous import (not timed)
            }
            let t = Instant::now();
            let handle = ipc.ipc_handle().map_err(cu)?;
            peer.channel.send(&Message::CudaIpc { handle, len: size, device_uuid: cuda.uuid() }, &[])?;
            ack(&peer)?;
            times[2].push(ms_since(t));
            ack(&peer)?; // released (not timed): the last fresh allocation's mapping is closed
            drop(fresh_prev.take());
            let fresh = DeviceAllocation::new(&cuda, len).map_err(cu)?;
            let t = Instant::now();
            let handle = fresh.ipc_handle().map_err(cu)?;
            peer.channel.send(&Message::CudaIpc { handle, len: size, device_uuid: cuda.uuid() }, &[])?;
            ack(&peer)?;
            times[4].push(ms_since(t));
            ack(&peer)?;
            fresh_prev = Some(fresh);
            let t = Instant::now();
            // SAFETY: `len` bytes each; synchronous copies.
            unsafe {
                check(sys::cuMemcpyDtoH_v2(pinned.0, ipc.device_ptr(), len), "cuMemcpyDtoH")?;
                check(sys::cuMemcpyHtoD_v2(target.device_ptr(), pinned.0, len), "cuMemcpyHtoD")?;
            }
            times[3].push(ms_since(t));
        }
        let [a, b, c, d, e] = times.map(median);
        eprintln!(
            "  {size:>11} bytes: Vulkan plain {a:.3} ms, dedicated {b:.3} ms, CUDA IPC re-opened (cached) {c:.3} ms, \
             fresh {e:.3} ms, pinned staging {d:.3} ms"
        );
        out.push(FirstHandOff {
            bytes: size,
            vulkan_plain_ms: a,
            vulkan_dedicated_ms: b,
            cuda_ipc_cached_ms: c,
            cuda_ipc_fresh_ms: e,
            pinned_staging_ms: d,
        });
        drop(fresh_prev);
    }
    if !peer.finish()? {
        return Err(extmem::Error::Peer("the CUDA consumer failed".into()));
    }
    Ok(out)
}
