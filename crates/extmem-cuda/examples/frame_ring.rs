//! A free-running ring of frames from Vulkan to CUDA, with no host wait per frame: the pattern
//! that keeps the steady state fast on one GPU (see `bench/results/h100.md`).
//!
//! Vulkan fills frame `k` into slot `k % SLOTS` after CUDA has released the frame `SLOTS` back
//! (timeline semaphore `done`), and signals `ready = k + 1`. CUDA's stream waits for `ready`,
//! uses the frame (copies its first and last word into a log of its own) and signals
//! `done = k + 1`. Only the oldest Vulkan submissions are waited for, through Vulkan's own fences.
//! At the end the log proves CUDA saw every frame, whole and in order.
//!
//! `cargo run --release -p extmem-cuda --example frame_ring -- [frames] [general|transfer]`
//! (an NVIDIA GPU with CUDA; `scripts/gpu-check.sh` runs it).

use extmem::sync::SharedSemaphore;
use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, QueueKind, SharedMemory};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::{Cuda, DeviceAllocation};
use std::collections::VecDeque;
use std::time::Instant;

const SLOTS: u64 = 4;
/// Vulkan submissions in flight before the host waits for the oldest one.
const IN_FLIGHT: usize = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let frames: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let queue: QueueKind = args.next().map(|a| a.parse()).transpose()?.unwrap_or_default();
    if !extmem_cuda::available() {
        println!("SKIPPED: no CUDA driver here");
        return Ok(());
    }
    let ctx = Context::new(&ContextOptions::default().queue(queue).app_name("frame_ring"))?;
    let cuda = Cuda::for_vulkan(&ctx)?;
    let (w, h) = (1920u64, 1080u64);
    let len = (w * h * 4) as usize;
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let slots: Vec<SharedMemory> = (0..SLOTS)
        .map(|_| {
            SharedMemory::new_buffer(
                &ctx,
                BufferDesc { size: len as u64, usage },
                HandleType::OpaqueFd,
                Dedicated::Always,
            )
        })
        .collect::<Result<_, _>>()?;
    let in_cuda = slots
        .iter()
        .map(|s| s.export().map_err(Box::from).and_then(|(d, fd)| Ok(cuda.import_memory(&d, fd)?)))
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let (ready, done) = (SharedSemaphore::new_timeline(&ctx)?, SharedSemaphore::new_timeline(&ctx)?);
    let (cuda_ready, cuda_done) = (cuda.import_semaphore(ready.export()?)?, cuda.import_semaphore(done.export()?)?);
    // CUDA's log: the first and the last word of every frame it used.
    let log = DeviceAllocation::new(&cuda, frames as usize * 8)?;
    let stream = cuda.stream().cu_stream();

    let mut pending = VecDeque::new();
    let t = Instant::now();
    for k in 0..frames {
        let slot = (k % SLOTS) as usize;
        // CUDA's side is queued first; its stream waits on the GPU for Vulkan's frame.
        cuda_ready.wait(&cuda, k + 1)?;
        let frame = in_cuda[slot].device_ptr();
        // SAFETY: 4-byte copies inside the frame and inside the log, ordered on the stream.
        unsafe {
            sys::cuMemcpyDtoDAsync_v2(log.device_ptr() + 8 * k, frame, 4, stream).result()?;
            sys::cuMemcpyDtoDAsync_v2(log.device_ptr() + 8 * k + 4, frame + len as u64 - 4, 4, stream).result()?;
        }
        cuda_done.signal(&cuda, k + 1)?;
        // Vulkan refills the slot once CUDA is done with the frame SLOTS back.
        let mut handoff = Handoff::host().signal(&ready, k + 1);
        if k >= SLOTS {
            handoff = handoff.wait(&done, k + 1 - SLOTS);
        }
        pending.push_back(slots[slot].fill(k as u32, handoff)?);
        if pending.len() > IN_FLIGHT {
            pending.pop_front().expect("non-empty").wait()?;
        }
    }
    pending.drain(..).try_for_each(|s| s.wait())?;
    cuda.synchronize()?;
    let per_frame = t.elapsed().as_secs_f64() * 1e6 / frames as f64;

    let words: Vec<u32> =
        log.to_host(&cuda)?.chunks(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    for k in 0..frames as usize {
        if words[2 * k] != k as u32 || words[2 * k + 1] != k as u32 {
            return Err(format!(
                "frame {k}: CUDA saw words {} and {} (another frame, or a frame half written)",
                words[2 * k],
                words[2 * k + 1]
            )
            .into());
        }
    }
    println!(
        "PASS: {frames} frames of {len} bytes through a ring of {SLOTS} on the {queue:?} queue ({}): \
         CUDA saw every frame whole and in order; {per_frame:.1} µs per frame",
        ctx.device_name()
    );
    Ok(())
}
