//! B. The steady state in one process, per frame: Vulkan fills, CUDA uses, and back.

use crate::support::error::cuda_as_extmem as cu;
use crate::support::timing::us_since;
use extmem::frames::{Frame, FrameSync, Role};
use extmem::sync::SharedSemaphore;
use extmem::{
    Context, ContextOptions, Dedicated, Handoff, QueueKind, SharedMemory,
};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::DeviceAllocation;
use extmem_cuda::{CounterWait, Cuda};
use serde::Serialize;
use std::time::Instant;
use crate::bench::cuda::util::{buffer, check, queue_name};

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

/// The steady state on `queue`, `frames` frames per figure.
pub fn steady_state(frames: u64, queue: QueueKind) -> extmem::Result<Vec<SteadyState>> {
    let ctx = Context::new(&ContextOptions::default().app_name("extmem bench cuda").queue(queue))?;
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
