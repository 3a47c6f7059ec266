//! `extmem bench --cuda`: Vulkan → CUDA, measured against what CUDA users would do otherwise.
//!
//! A. First hand-off by size, to a CUDA process (export + send + cuImportExternalMemory +
//!    cuExternalMemoryGetMappedBuffer, acknowledged), with plain and dedicated Vulkan
//!    allocations, against CUDA IPC between two processes (cuIpcGetMemHandle + send +
//!    cuIpcOpenMemHandle, acknowledged) of one allocation re-opened each time (cached by the
//!    driver) and of a fresh cuMemAlloc allocation each time, and against staging the bytes through pinned host
//!    memory (device to pinned host, pinned host to device).
//! B. Steady state in one process, per frame: Vulkan fills the frame on the GPU, CUDA copies it
//!    out of the shared memory (its use of the frame), and hands it back; synchronised by the
//!    exported timeline semaphore, by the counter fast path, or replaced by a copy of the frame
//!    (device to device, or through the host); with Vulkan on its general queue and on a
//!    transfer-only queue (the copy engines).
//! C. One crossing with tiny work, per Vulkan queue kind: what synchronisation costs once the
//!    work is negligible, and what alternating the GPU between two contexts costs (two CUDA
//!    contexts, two Vulkan devices) for comparison.

use crate::child::Peer;
use crate::peer_cuda::cu;
use crate::timing::{median, monotonic_ns, ms_since, us_since};
use extmem::frames::{Frame, FrameSync, Role};
use extmem::sync::SharedSemaphore;
use extmem::transport::Message;
use extmem::{
    vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, PathKind, QueueKind, SharedMemory,
};
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
    /// CUDA IPC of one allocation opened again and again (the driver serves it from a cache).
    pub cuda_ipc_cached_ms: f64,
    /// CUDA IPC of a fresh `cuMemAlloc` allocation each time (never opened before).
    pub cuda_ipc_fresh_ms: f64,
    pub pinned_staging_ms: f64,
}

#[derive(Serialize)]
pub struct SteadyState {
    queue: String,
    frame: &'static str,
    bytes: u64,
    semaphore_us: f64,
    counter_us: f64,
    counter_host_us: f64,
    semaphore_batched_us: f64,
    ring_free_running_us: f64,
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

fn check(r: sys::CUresult, call: &'static str) -> extmem::Result<()> {
    r.result().map_err(|e| cu(extmem_cuda::Error::Cuda { call, source: e }))
}

pub fn first_hand_off(sizes: &[u64], repeat: usize) -> extmem::Result<Vec<FirstHandOff>> {
    let ctx = Context::new(&ContextOptions::default().path(PathKind::Nv).app_name("extmem bench --cuda"))?;
    let cuda = Cuda::for_vulkan(&ctx).map_err(cu)?;
    let peer = Peer::spawn(false, monotonic_ns(), &["--cuda", "--probe"])?;
    let mut out = Vec::new();
    // A size above the device's largest allocation is measured at that largest allocation
    // (NVIDIA's: 4 GiB less 2 MiB), as `bench --pool` does.
    let max = extmem::limits::device_limits(&ctx).max_memory_allocation_size;
    let sizes: Vec<u64> = sizes.iter().map(|&s| s.min(max)).collect();
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

pub fn steady_state(frames: u64, queue: QueueKind) -> extmem::Result<Vec<SteadyState>> {
    let ctx = Context::new(&ContextOptions::default().app_name("extmem bench --cuda").queue(queue))?;
    let queue = queue_name(&ctx);
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
        cuda.context()
            .bind_to_thread()
            .map_err(|e| cu(extmem_cuda::Error::Cuda { call: "cuCtxSetCurrent", source: e }))?;
        let scratch = DeviceAllocation::new(&cuda, len).map_err(cu)?;
        let consume = || scratch.copy_from(&cuda, mem.device_ptr(), len).map_err(cu);

        // Up to this many Vulkan submissions stay in flight; the host waits only for the
        // oldest one (its own fence), never for the other API's work.
        const IN_FLIGHT: usize = 3;
        let mut pending = std::collections::VecDeque::new();

        // (a) Exported timeline semaphore both ways, pipelined: Vulkan → CUDA → Vulkan ordered
        // on the GPUs.
        let t = Instant::now();
        let vulkan = FrameSync::new(Role::Producer).semaphore(Some(&sem));
        for n in 0..frames {
            let f = Frame::new(n);
            csem.wait(&cuda, f.ready()).map_err(cu)?;
            consume()?;
            csem.signal(&cuda, f.done()).map_err(cu)?;
            keep_in_flight(&mut pending, shared.fill(n as u32, vulkan.around(f))?, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        cuda.synchronize().map_err(cu)?;
        let semaphore_us = us_since(t) / frames as f64;
        let base = Frame::new(frames).previous_done().unwrap_or(0); // where (a) left the semaphore

        // (b) Counter fast path Vulkan → CUDA (cuStreamWaitValue32), semaphore CUDA → Vulkan
        // (Vulkan's next frame waits on the GPU), pipelined.
        let t = Instant::now();
        for n in 1..=frames {
            cmem.wait_counter(&cuda, 0, n as u32).map_err(cu)?;
            consume()?;
            csem.signal(&cuda, base + n).map_err(cu)?;
            let mut handoff = Handoff::host().counter(&counter, 0, n as u32);
            if n > 1 {
                handoff = handoff.wait(&sem, base + n - 1);
            }
            keep_in_flight(&mut pending, shared.fill(n as u32, handoff)?, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        cuda.synchronize().map_err(cu)?;
        let counter_us = us_since(t) / frames as f64;

        // (c) Counter fast path, the hand-back through CUDA's own stream completing on the host
        // (cuStreamSynchronize): no semaphore at all.
        let t = Instant::now();
        for n in 1..=frames {
            let v = (frames + n) as u32;
            cmem.wait_counter(&cuda, 0, v).map_err(cu)?;
            consume()?;
            let s = shared.fill(n as u32, Handoff::host().counter(&counter, 0, v))?;
            cuda.synchronize().map_err(cu)?;
            keep_in_flight(&mut pending, s, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        let counter_host_us = us_since(t) / frames as f64;

        // The work alone, with no crossing: Vulkan's fills back to back, CUDA's copies back to
        // back. What the loops above spend beyond this is synchronisation.
        let t = Instant::now();
        for n in 0..frames {
            keep_in_flight(&mut pending, shared.fill(n as u32, Handoff::host())?, IN_FLIGHT)?;
        }
        pending.drain(..).try_for_each(|s| s.wait())?;
        let vulkan_work_us = us_since(t) / frames as f64;
        let t = Instant::now();
        for _ in 0..frames {
            consume()?;
        }
        cuda.synchronize().map_err(cu)?;
        let cuda_work_us = us_since(t) / frames as f64;

        // (d) A ring of BATCH frame buffers crossing together: one semaphore crossing each way
        // per batch. If the per-frame cost falls with the batch, the cost is per crossing.
        const BATCH: u64 = 4;
        let ring: Vec<SharedMemory> =
            (0..BATCH).map(|_| buffer(&ctx, bytes, Dedicated::Always)).collect::<extmem::Result<_>>()?;
        let ring_cuda: Vec<_> = ring
            .iter()
            .map(|b| b.export().and_then(|(d, f)| cuda.import_memory(&d, f).map_err(cu)))
            .collect::<extmem::Result<_>>()?;
        // Batch k is frame 2 * frames + k of the protocol: its values lie above (b)'s.
        let first_batch = 2 * frames;
        let batches = frames / BATCH;
        let mut ring_pending = std::collections::VecDeque::new();
        let t = Instant::now();
        for k in 0..batches {
            let f = Frame::new(first_batch + k);
            csem.wait(&cuda, f.ready()).map_err(cu)?;
            for m in &ring_cuda {
                scratch.copy_from(&cuda, m.device_ptr(), len).map_err(cu)?;
            }
            csem.signal(&cuda, f.done()).map_err(cu)?;
            for (i, b) in ring.iter().enumerate() {
                let first = i == 0;
                let last = i as u64 == BATCH - 1;
                let mut handoff = Handoff::host();
                if let (true, true, Some(v)) = (first, k > 0, f.previous_done()) {
                    handoff = handoff.wait(&sem, v);
                }
                if last {
                    handoff = handoff.signal(&sem, f.ready());
                }
                keep_in_flight(
                    &mut ring_pending,
                    b.fill((k * BATCH) as u32 + i as u32, handoff)?,
                    IN_FLIGHT * BATCH as usize,
                )?;
            }
        }
        ring_pending.drain(..).try_for_each(|s| s.wait())?;
        cuda.synchronize().map_err(cu)?;
        let semaphore_batched_us = us_since(t) / (batches * BATCH) as f64;

        // (f) The same 4 buffers as a free-running ring: every frame crosses on its own (one
        // semaphore each way: `ready` counts Vulkan's frames, `done` CUDA's), and Vulkan may run
        // up to 4 frames ahead. Whether the GPU then alternates less often than once per frame
        // is up to its scheduler.
        let (ready, done) = (SharedSemaphore::new_timeline(&ctx)?, SharedSemaphore::new_timeline(&ctx)?);
        let (cready, cdone) =
            (cuda.import_semaphore(ready.export()?).map_err(cu)?, cuda.import_semaphore(done.export()?).map_err(cu)?);
        let t = Instant::now();
        for k in 0..frames {
            let slot = (k % BATCH) as usize;
            cready.wait(&cuda, k + 1).map_err(cu)?;
            scratch.copy_from(&cuda, ring_cuda[slot].device_ptr(), len).map_err(cu)?;
            cdone.signal(&cuda, k + 1).map_err(cu)?;
            // The slot is free once CUDA has used the frame BATCH frames back.
            let mut handoff = Handoff::host().signal(&ready, k + 1);
            if k >= BATCH {
                handoff = handoff.wait(&done, k + 1 - BATCH);
            }
            keep_in_flight(&mut ring_pending, ring[slot].fill(k as u32, handoff)?, IN_FLIGHT * BATCH as usize)?;
        }
        ring_pending.drain(..).try_for_each(|s| s.wait())?;
        drop(ring_pending);
        cuda.synchronize().map_err(cu)?;
        let ring_free_running_us = us_since(t) / frames as f64;
        drop((cready, cdone, ready, done));
        drop(ring_cuda);
        drop(ring);

        // Copying each frame instead: device to device (from the imported memory into CUDA's).
        let t = Instant::now();
        for n in 0..frames {
            shared.fill(n as u32, Handoff::host())?.wait()?;
            consume()?;
            cuda.synchronize().map_err(cu)?;
        }
        let copy_device_to_device_us = us_since(t) / frames as f64;

        // Through the host: Vulkan reads the frame back, CUDA uploads it.
        let copy_frames = frames.min(20);
        let t = Instant::now();
        for n in 0..copy_frames {
            shared.fill(n as u32, Handoff::host())?.wait()?;
            let host = shared.read(Handoff::host())?;
            // SAFETY: `len` bytes each side.
            check(unsafe { sys::cuMemcpyHtoD_v2(scratch.device_ptr(), host.as_ptr().cast(), len) }, "cuMemcpyHtoD")?;
        }
        let copy_through_host_us = us_since(t) / copy_frames as f64;
        eprintln!(
            "  {queue} queue, {frame}: semaphore {semaphore_us:.1} µs/frame, counter+semaphore {counter_us:.1}, counter+host {counter_host_us:.1}, \
             semaphore with 4 frames per crossing {semaphore_batched_us:.1}, free-running ring of 4 {ring_free_running_us:.1}, \
             work alone: Vulkan {vulkan_work_us:.1} / CUDA {cuda_work_us:.1}, \
             copy D2D {copy_device_to_device_us:.1} µs/frame, copy via host {copy_through_host_us:.1} µs/frame"
        );
        out.push(SteadyState {
            queue: queue.clone(),
            frame,
            bytes,
            semaphore_us,
            counter_us,
            counter_host_us,
            semaphore_batched_us,
            ring_free_running_us,
            vulkan_work_us,
            cuda_work_us,
            copy_device_to_device_us,
            copy_through_host_us,
        });
        drop((csem, cmem, mem));
    }
    Ok(out)
}

/// How a context's queue is named in the results: the kind, with the family's abilities.
fn queue_name(ctx: &Context) -> String {
    let flags = ctx.queue_flags();
    let kind = if flags.contains(vk::QueueFlags::GRAPHICS) {
        "general"
    } else if flags.contains(vk::QueueFlags::COMPUTE) {
        "compute"
    } else {
        "transfer"
    };
    format!("{kind} (family {})", ctx.queue_family())
}

/// One Vulkan → CUDA (and back) crossing with tiny work on each side, per Vulkan queue.
#[derive(Serialize)]
pub struct Crossing {
    queue: String,
    /// A 256-byte Vulkan fill, submitted and waited for (its fence), alone.
    vulkan_alone_us: f64,
    /// A 256-byte CUDA memset, launched and synchronised, alone.
    cuda_alone_us: f64,
    /// The two one after the other (unrelated memory, no synchronisation between them).
    alternating_us: f64,
    /// CUDA's stream waits for a counter the Vulkan submission writes; from the submission to
    /// `cuStreamSynchronize` returning.
    counter_us: f64,
    /// The same through the exported timeline semaphore.
    semaphore_us: f64,
    /// CUDA signals the semaphore, a Vulkan submission waits for it on the GPU; until its
    /// fence.
    semaphore_back_us: f64,
}

/// What alternating the GPU between two contexts costs with no other API involved.
#[derive(Serialize)]
pub struct ContextSwitch {
    /// Two CUDA contexts' tiny memsets, one after the other, each synchronised.
    two_cuda_contexts_us: f64,
    /// Two Vulkan devices' tiny fills, one after the other, each waited for.
    two_vulkan_devices_us: f64,
}

/// The median of `iters` timed runs of `f` (µs), after 10 unmeasured ones.
fn median_us(iters: usize, mut f: impl FnMut() -> extmem::Result<f64>) -> extmem::Result<f64> {
    for _ in 0..10 {
        f()?;
    }
    Ok(median((0..iters).map(|_| f()).collect::<extmem::Result<_>>()?))
}

/// A 256-byte memset on `stream` of `ctx`, synchronised.
fn cuda_tiny(ctx: sys::CUcontext, stream: sys::CUstream, ptr: sys::CUdeviceptr) -> extmem::Result<()> {
    // SAFETY: a live context, stream and allocation of at least 256 bytes.
    unsafe {
        check(sys::cuCtxSetCurrent(ctx), "cuCtxSetCurrent")?;
        check(sys::cuMemsetD32Async(ptr, 1, 64, stream), "cuMemsetD32Async")?;
        check(sys::cuStreamSynchronize(stream), "cuStreamSynchronize")
    }
}

/// A second CUDA context on the device, with a stream and 256 bytes; destroyed on drop.
struct SecondContext {
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    ptr: sys::CUdeviceptr,
}
impl SecondContext {
    fn new(ordinal: usize) -> extmem::Result<SecondContext> {
        let mut c = SecondContext { ctx: std::ptr::null_mut(), stream: std::ptr::null_mut(), ptr: 0 };
        // SAFETY: creates the context, then its stream and allocation while it is current;
        // `Drop` releases whatever was made.
        unsafe {
            check(sys::cuCtxCreate_v2(&mut c.ctx, 0, ordinal as i32), "cuCtxCreate")?;
            check(sys::cuStreamCreate(&mut c.stream, 0), "cuStreamCreate")?;
            check(sys::cuMemAlloc_v2(&mut c.ptr, 256), "cuMemAlloc")?;
        }
        Ok(c)
    }
}
impl Drop for SecondContext {
    fn drop(&mut self) {
        if self.ctx.is_null() {
            return;
        }
        // SAFETY: made in `new`; its stream was synchronised by its last use.
        unsafe {
            sys::cuCtxSetCurrent(self.ctx);
            if self.ptr != 0 {
                sys::cuMemFree_v2(self.ptr);
            }
            if !self.stream.is_null() {
                sys::cuStreamDestroy_v2(self.stream);
            }
            sys::cuCtxDestroy_v2(self.ctx);
        }
    }
}

pub fn crossings(iters: usize, queues: &[QueueKind]) -> extmem::Result<(Vec<Crossing>, ContextSwitch)> {
    let options = |queue| ContextOptions::default().app_name("extmem bench --cuda").queue(queue);
    let first = Context::new(&options(QueueKind::General))?;
    let cuda = Cuda::for_vulkan(&first).map_err(cu)?;
    let (cu_ctx, stream) = (cuda.context().cu_ctx(), cuda.stream().cu_stream());
    let own = DeviceAllocation::new(&cuda, 256).map_err(cu)?;
    let tiny_cuda = || cuda_tiny(cu_ctx, stream, own.device_ptr());

    let switch = {
        let second = SecondContext::new(cuda.ordinal())?;
        let two_cuda_contexts_us = median_us(iters, || {
            let t = Instant::now();
            tiny_cuda()?;
            cuda_tiny(second.ctx, second.stream, second.ptr)?;
            Ok(us_since(t))
        })?;
        let other = Context::new(&options(QueueKind::General))?;
        let (a, b) = (buffer(&first, 256, Dedicated::Always)?, buffer(&other, 256, Dedicated::Always)?);
        let two_vulkan_devices_us = median_us(iters, || {
            let t = Instant::now();
            a.fill(1, Handoff::host())?.wait()?;
            b.fill(1, Handoff::host())?.wait()?;
            Ok(us_since(t))
        })?;
        ContextSwitch { two_cuda_contexts_us, two_vulkan_devices_us }
    };

    let mut out = Vec::new();
    for &queue in queues {
        let ctx = Context::new(&options(queue))?;
        let tiny = buffer(&ctx, 256, Dedicated::Always)?;
        let (d, f) = tiny.export()?;
        let counter = cuda.import_memory(&d, f).map_err(cu)?;
        let sem = SharedSemaphore::new_timeline(&ctx)?;
        let csem = cuda.import_semaphore(sem.export()?).map_err(cu)?;
        // The buffer's contents are the counter; its values and the semaphore's only grow.
        let mut next = 0u32;
        let memset = || -> extmem::Result<()> {
            // SAFETY: a live stream and allocation.
            check(unsafe { sys::cuMemsetD32Async(own.device_ptr(), 1, 64, stream) }, "cuMemsetD32Async")
        };
        let vulkan_alone_us = median_us(iters, || {
            next += 1;
            let t = Instant::now();
            tiny.fill(next, Handoff::host())?.wait()?;
            Ok(us_since(t))
        })?;
        let cuda_alone_us = median_us(iters, || {
            let t = Instant::now();
            tiny_cuda()?;
            Ok(us_since(t))
        })?;
        let alternating_us = median_us(iters, || {
            next += 1;
            let t = Instant::now();
            tiny.fill(next, Handoff::host())?.wait()?;
            tiny_cuda()?;
            Ok(us_since(t))
        })?;
        let counter_us = median_us(iters, || {
            next += 1;
            counter.wait_counter(&cuda, 0, next).map_err(cu)?;
            memset()?;
            let t = Instant::now();
            let s = tiny.fill(next, Handoff::host())?;
            cuda.synchronize().map_err(cu)?;
            let dt = us_since(t);
            s.wait()?;
            Ok(dt)
        })?;
        let semaphore_us = median_us(iters, || {
            next += 1;
            csem.wait(&cuda, next as u64).map_err(cu)?;
            memset()?;
            let t = Instant::now();
            let s = tiny.fill(next, Handoff::host().signal(&sem, next as u64))?;
            cuda.synchronize().map_err(cu)?;
            let dt = us_since(t);
            s.wait()?;
            Ok(dt)
        })?;
        let semaphore_back_us = median_us(iters, || {
            next += 1;
            let t = Instant::now();
            memset()?;
            csem.signal(&cuda, next as u64).map_err(cu)?;
            tiny.fill(next, Handoff::host().wait(&sem, next as u64))?.wait()?;
            let dt = us_since(t);
            cuda.synchronize().map_err(cu)?;
            Ok(dt)
        })?;
        let queue = queue_name(&ctx);
        eprintln!(
            "  {queue} queue: Vulkan alone {vulkan_alone_us:.1} µs, CUDA alone {cuda_alone_us:.1}, alternating {alternating_us:.1}, \
             counter crossing {counter_us:.1}, semaphore crossing {semaphore_us:.1}, semaphore back {semaphore_back_us:.1}"
        );
        out.push(Crossing {
            queue,
            vulkan_alone_us,
            cuda_alone_us,
            alternating_us,
            counter_us,
            semaphore_us,
            semaphore_back_us,
        });
        drop((csem, counter));
    }
    eprintln!(
        "  two CUDA contexts alternating {:.1} µs, two Vulkan devices alternating {:.1} µs",
        switch.two_cuda_contexts_us, switch.two_vulkan_devices_us
    );
    Ok((out, switch))
}
