//! `extmem bench --cuda`: Vulkan → CUDA, measured against what CUDA users would do otherwise.
//!
//! A. First hand-off by size, to a CUDA process (export + send + cuImportExternalMemory +
//!    cuExternalMemoryGetMappedBuffer, acknowledged), with plain and dedicated Vulkan
//!    allocations, against CUDA IPC between two processes (cuIpcGetMemHandle + send +
//!    cuIpcOpenMemHandle, acknowledged) and against staging the bytes through pinned host
//!    memory (device to pinned host, pinned host to device).
//! B. Steady state in one process, per frame: Vulkan fills the frame on the GPU, CUDA copies it
//!    out of the shared memory (its use of the frame), and hands it back; synchronised by the
//!    exported timeline semaphore, by the counter fast path, or replaced by a copy of the frame
//!    (device to device, or through the host).

use crate::bench::{median, ms_since};
use crate::peer::{monotonic_ns, Peer};
use crate::peer_cuda::cu;
use extmem::sync::SharedSemaphore;
use extmem::transport::Message;
use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, PathKind, SharedMemory};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::DeviceAllocation;
use extmem_cuda::{CounterWait, Cuda};
use serde::Serialize;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

#[derive(Serialize)]
pub struct FirstHandOff {
    pub bytes: u64,
    pub vulkan_plain_ms: f64,
    pub vulkan_dedicated_ms: f64,
    pub cuda_ipc_ms: f64,
    pub pinned_staging_ms: f64,
}

#[derive(Serialize)]
pub struct SteadyState {
    frame: &'static str,
    bytes: u64,
    semaphore_us: f64,
    counter_us: f64,
    counter_host_us: f64,
    counter_after_us: f64,
    semaphore_batched_us: f64,
    vulkan_work_us: f64,
    cuda_work_us: f64,
    copy_device_to_device_us: f64,
    copy_through_host_us: f64,
}

fn buffer(ctx: &Arc<Context>, size: u64, dedicated: Dedicated) -> extmem::Result<SharedMemory> {
    let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    SharedMemory::new_buffer(ctx, desc, HandleType::OpaqueFd, dedicated)
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
        unsafe { sys::cuMemHostAlloc(&mut p, len, 0) }.result().map_err(|e| cu(extmem_cuda::Error::Cuda { call: "cuMemHostAlloc", source: e }))?;
        Ok(Pinned(p))
    }
}
impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: allocated by `new`.
        unsafe { sys::cuMemFreeHost(self.0) };
    }
}

fn check(r: sys::CUresult, call: &'static str) -> extmem::Result<()> {
    r.result().map_err(|e| cu(extmem_cuda::Error::Cuda { call, source: e }))
}

pub fn first_hand_off(sizes: &[u64], repeat: usize) -> extmem::Result<Vec<FirstHandOff>> {
    let ctx = Context::new(&ContextOptions { path: PathKind::Nv, app_name: "extmem bench --cuda".into(), ..Default::default() })?;
    let cuda = Cuda::for_vulkan(&ctx).map_err(cu)?;
    let peer = Peer::spawn(false, monotonic_ns(), &["--cuda", "--probe"])?;
    let mut out = Vec::new();
    for &size in sizes {
        let len = size as usize;
        let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let plain = buffer(&ctx, size, Dedicated::Never)?;
        let dedicated = buffer(&ctx, size, Dedicated::Always)?;
        let ipc = DeviceAllocation::new(&cuda, len).map_err(cu)?;
        cuda.context().bind_to_thread().map_err(|e| cu(extmem_cuda::Error::Cuda { call: "cuCtxSetCurrent", source: e }))?;
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
            ack(&peer)?; // released (not timed)
            let t = Instant::now();
            // SAFETY: `len` bytes each; synchronous copies.
            unsafe {
                check(sys::cuMemcpyDtoH_v2(pinned.0, ipc.device_ptr(), len), "cuMemcpyDtoH")?;
                check(sys::cuMemcpyHtoD_v2(target.device_ptr(), pinned.0, len), "cuMemcpyHtoD")?;
            }
            times[3].push(ms_since(t));
        }
        let [a, b, c, d] = times.map(median);
        eprintln!("  {size:>11} bytes: Vulkan plain {a:.3} ms, dedicated {b:.3} ms, CUDA IPC {c:.3} ms, pinned staging {d:.3} ms");
        out.push(FirstHandOff { bytes: size, vulkan_plain_ms: a, vulkan_dedicated_ms: b, cuda_ipc_ms: c, pinned_staging_ms: d });
    }
    if !peer.finish()? {
        return Err(extmem::Error::Peer("the CUDA consumer failed".into()));
    }
    Ok(out)
}

/// Queues a submission, waiting for the oldest (its own fence) once more than `max` are in
/// flight.
fn keep_in_flight<'a>(
    queue: &mut std::collections::VecDeque<extmem::Submission<'a>>,
    submission: extmem::Submission<'a>,
    max: usize,
) -> extmem::Result<()> {
    queue.push_back(submission);
    if queue.len() > max {
        queue.pop_front().expect("non-empty").wait()?;
    }
    Ok(())
}

pub fn steady_state(frames: u64) -> extmem::Result<Vec<SteadyState>> {
    let ctx = Context::new(&ContextOptions { app_name: "extmem bench --cuda".into(), ..Default::default() })?;
    let cuda = Cuda::for_vulkan(&ctx).map_err(cu)?;
    let mut out = Vec::new();
    for (frame, w, h) in [("1080p RGBA8", 1920u64, 1080u64), ("4K RGBA8", 3840, 2160)] {
        let bytes = w * h * 4;
        let len = bytes as usize;
        let shared = buffer(&ctx, bytes, Dedicated::Always)?;
        let counter = buffer(&ctx, 256, Dedicated::Always)?;
        let (d, f) = shared.export()?;
        let mem = cuda.import_memory(&d, f).map_err(cu)?;
        let (d, f) = counter.export()?;
        let cmem = cuda.import_memory(&d, f).map_err(cu)?;
        let sem = SharedSemaphore::new_timeline(&ctx)?;
        let csem = cuda.import_semaphore(sem.export()?).map_err(cu)?;
        cuda.context().bind_to_thread().map_err(|e| cu(extmem_cuda::Error::Cuda { call: "cuCtxSetCurrent", source: e }))?;
        let scratch = DeviceAllocation::new(&cuda, len).map_err(cu)?;
        let consume = || scratch.copy_from(&cuda, mem.device_ptr(), len).map_err(cu);

        // Up to this many Vulkan submissions stay in flight; the host waits only for the
        // oldest one (its own fence), never for the other API's work.
        const IN_FLIGHT: usize = 3;
        let mut pending = std::collections::VecDeque::new();

        // (a) Exported timeline semaphore both ways, pipelined: Vulkan → CUDA → Vulkan ordered
        // on the GPUs.
        let t = Instant::now();
        for n in 0..frames {
            csem.wait(&cuda, 2 * n + 1).map_err(cu)?;
            consume()?;
            csem.signal(&cuda, 2 * n + 2).map_err(cu)?;
            let prev = (n > 0).then_some((&sem, 2 * n));
            keep_in_flight(&mut pending, shared.fill_async(n as u32, prev, Some((&sem, 2 * n + 1)), None)?, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        cuda.synchronize().map_err(cu)?;
        let semaphore_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;
        let base = 2 * frames;

        // (b) Counter fast path Vulkan → CUDA (cuStreamWaitValue32), semaphore CUDA → Vulkan
        // (Vulkan's next frame waits on the GPU), pipelined.
        let t = Instant::now();
        for n in 1..=frames {
            cmem.wait_counter(&cuda, 0, n as u32).map_err(cu)?;
            consume()?;
            csem.signal(&cuda, base + n).map_err(cu)?;
            let prev = (n > 1).then_some((&sem, base + n - 1));
            keep_in_flight(&mut pending, shared.fill_async(n as u32, prev, None, Some((&counter, 0, n as u32)))?, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        cuda.synchronize().map_err(cu)?;
        let counter_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;

        // (c) Counter fast path, the hand-back through CUDA's own stream completing on the host
        // (cuStreamSynchronize): no semaphore at all.
        let t = Instant::now();
        for n in 1..=frames {
            let v = (frames + n) as u32;
            cmem.wait_counter(&cuda, 0, v).map_err(cu)?;
            consume()?;
            let s = shared.fill_async(n as u32, None, None, Some((&counter, 0, v)))?;
            cuda.synchronize().map_err(cu)?;
            keep_in_flight(&mut pending, s, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        let counter_host_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;

        // (e) As (c), but CUDA's wait is queued only after Vulkan's submission: if a CUDA stream
        // that waits holds the GPU until its time slice ends, this order avoids it.
        let t = Instant::now();
        for n in 1..=frames {
            let v = (2 * frames + n) as u32;
            let s = shared.fill_async(n as u32, None, None, Some((&counter, 0, v)))?;
            cmem.wait_counter(&cuda, 0, v).map_err(cu)?;
            consume()?;
            cuda.synchronize().map_err(cu)?;
            keep_in_flight(&mut pending, s, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        let counter_after_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;

        // The work alone, with no crossing: Vulkan's fills back to back, CUDA's copies back to
        // back. What the loops above spend beyond this is synchronisation.
        let t = Instant::now();
        for n in 0..frames {
            keep_in_flight(&mut pending, shared.fill_async(n as u32, None, None, None)?, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        let vulkan_work_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;
        let t = Instant::now();
        for _ in 0..frames {
            consume()?;
        }
        cuda.synchronize().map_err(cu)?;
        let cuda_work_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;

        // (d) A ring of BATCH frame buffers crossing together: one semaphore crossing each way
        // per batch. If the per-frame cost falls with the batch, the cost is per crossing.
        const BATCH: u64 = 4;
        let ring: Vec<SharedMemory> = (0..BATCH).map(|_| buffer(&ctx, bytes, Dedicated::Always)).collect::<extmem::Result<_>>()?;
        let ring_cuda: Vec<_> = ring
            .iter()
            .map(|b| b.export().and_then(|(d, f)| cuda.import_memory(&d, f).map_err(cu)))
            .collect::<extmem::Result<_>>()?;
        let base = 2 * frames + 2 * frames;
        let batches = frames / BATCH;
        let mut ring_pending = std::collections::VecDeque::new();
        let t = Instant::now();
        for k in 0..batches {
            csem.wait(&cuda, base + 2 * k + 1).map_err(cu)?;
            for m in &ring_cuda {
                scratch.copy_from(&cuda, m.device_ptr(), len).map_err(cu)?;
            }
            csem.signal(&cuda, base + 2 * k + 2).map_err(cu)?;
            for (i, b) in ring.iter().enumerate() {
                let first = i == 0;
                let last = i as u64 == BATCH - 1;
                let wait = (first && k > 0).then_some((&sem, base + 2 * k));
                let signal = last.then_some((&sem, base + 2 * k + 1));
                keep_in_flight(&mut ring_pending, b.fill_async((k * BATCH) as u32 + i as u32, wait, signal, None)?, IN_FLIGHT * BATCH as usize)?;
            }
        }
        ring_pending.drain(..).try_for_each(|s| s.wait())?;
        drop(ring_pending);
        cuda.synchronize().map_err(cu)?;
        let semaphore_batched_us = t.elapsed().as_secs_f64() * 1e6 / (batches * BATCH) as f64;
        drop(ring_cuda);
        drop(ring);

        // Copying each frame instead: device to device (from the imported memory into CUDA's).
        let t = Instant::now();
        for n in 0..frames {
            shared.fill_synced(n as u32, None, None, None)?;
            consume()?;
            cuda.synchronize().map_err(cu)?;
        }
        let copy_device_to_device_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;

        // Through the host: Vulkan reads the frame back, CUDA uploads it.
        let copy_frames = frames.min(20);
        let t = Instant::now();
        for n in 0..copy_frames {
            shared.fill_synced(n as u32, None, None, None)?;
            let host = shared.read()?;
            // SAFETY: `len` bytes each side.
            check(unsafe { sys::cuMemcpyHtoD_v2(scratch.device_ptr(), host.as_ptr().cast(), len) }, "cuMemcpyHtoD")?;
        }
        let copy_through_host_us = t.elapsed().as_secs_f64() * 1e6 / copy_frames as f64;
        eprintln!(
            "  {frame}: semaphore {semaphore_us:.1} µs/frame, counter+semaphore {counter_us:.1}, counter+host {counter_host_us:.1}, \
             counter+host with CUDA queued after Vulkan {counter_after_us:.1}, \
             semaphore with 4 frames per crossing {semaphore_batched_us:.1}, \
             work alone: Vulkan {vulkan_work_us:.1} / CUDA {cuda_work_us:.1}, \
             copy D2D {copy_device_to_device_us:.1} µs/frame, copy via host {copy_through_host_us:.1} µs/frame"
        );
        out.push(SteadyState {
            frame,
            bytes,
            semaphore_us,
            counter_us,
            counter_host_us,
            counter_after_us,
            semaphore_batched_us,
            vulkan_work_us,
            cuda_work_us,
            copy_device_to_device_us,
            copy_through_host_us,
        });
        drop((csem, cmem, mem));
    }
    Ok(out)
}
