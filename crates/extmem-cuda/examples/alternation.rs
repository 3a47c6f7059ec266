//! Where the time goes when one GPU alternates between a Vulkan device's work and a CUDA
//! context's work (a diagnostic for the steady-state numbers in `bench/results/h100.md`).
//!
//! For each Vulkan queue family kind (general, compute-only, transfer-only) it measures, per
//! iteration and as a median in µs:
//! - `vk`: a tiny Vulkan fill, submitted and waited for (host fence), alone;
//! - `cu`: a tiny CUDA memset, launched and synchronised, alone;
//! - `alt`: the two alternating (unrelated memory: no sharing involved);
//! - `alt-big`: a 4K RGBA8 frame filled by Vulkan and copied out by CUDA from the shared memory;
//! - `counter`: one crossing Vulkan → CUDA: CUDA's stream waits (`cuStreamWaitValue32`) for a
//!   counter that the Vulkan submission writes, timed from the submission to
//!   `cuStreamSynchronize` returning; `counter-after` queues CUDA's wait after the submission;
//! - `semaphore`: the same crossing through the exported timeline semaphore.
//!
//! And, for scale, two Vulkan devices alternating, and two CUDA contexts alternating.
//!
//! `EXTMEM_CUDA_SCHED=spin|yield|blocking|auto` sets the CUDA context's host scheduling.
//! Needs a GPU that both APIs see; run on the GPU machine (`scripts/gpu-check.sh`).

use extmem::sync::SharedSemaphore;
use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, QueueKind, SharedMemory};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::{CounterWait, Cuda, DeviceAllocation};
use std::sync::Arc;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn check(r: sys::CUresult, call: &str) -> Res<()> {
    r.result().map_err(|e| format!("{call}: {e}").into())
}

fn buffer(ctx: &Arc<Context>, size: u64) -> Res<SharedMemory> {
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    Ok(SharedMemory::new_buffer(ctx, BufferDesc { size, usage }, HandleType::OpaqueFd, Dedicated::Always)?)
}

/// Runs `f` `iters` times after 10 unmeasured runs; the median and the mean in µs.
fn measure(iters: usize, mut f: impl FnMut() -> Res<f64>) -> Res<(f64, f64)> {
    for _ in 0..10 {
        f()?;
    }
    let mut v: Vec<f64> = (0..iters).map(|_| f()).collect::<Res<_>>()?;
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.sort_by(f64::total_cmp);
    Ok((v[v.len() / 2], mean))
}

fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

fn report(name: &str, (median, mean): (f64, f64)) {
    println!("  {name:<34} median {median:>8.1} µs   mean {mean:>8.1} µs");
}

/// A tiny CUDA memset on `stream`, synchronised.
fn cuda_tiny(ctx: sys::CUcontext, stream: sys::CUstream, ptr: sys::CUdeviceptr) -> Res<()> {
    // SAFETY: a live context, stream and 256-byte allocation.
    unsafe {
        check(sys::cuCtxSetCurrent(ctx), "cuCtxSetCurrent")?;
        check(sys::cuMemsetD32Async(ptr, 1, 64, stream), "cuMemsetD32Async")?;
        check(sys::cuStreamSynchronize(stream), "cuStreamSynchronize")
    }
}

fn main() -> Res<()> {
    let iters: usize = std::env::var("EXTMEM_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let kinds = [QueueKind::General, QueueKind::Compute, QueueKind::Transfer];
    let ctxs: Vec<Arc<Context>> = kinds
        .iter()
        .map(|&queue| Context::new(&ContextOptions { queue, app_name: "alternation".into(), ..Default::default() }))
        .collect::<Result<_, _>>()?;
    let other = Context::new(&ContextOptions { app_name: "alternation, second device".into(), ..Default::default() })?;

    if let Ok(sched) = std::env::var("EXTMEM_CUDA_SCHED") {
        let flags = match sched.as_str() {
            "spin" => sys::CUctx_flags::CU_CTX_SCHED_SPIN,
            "yield" => sys::CUctx_flags::CU_CTX_SCHED_YIELD,
            "blocking" => sys::CUctx_flags::CU_CTX_SCHED_BLOCKING_SYNC,
            _ => sys::CUctx_flags::CU_CTX_SCHED_AUTO,
        };
        let uuids = extmem_cuda::device_uuids()?;
        let ordinal = uuids.iter().position(|u| *u == ctxs[0].device_uuid()).ok_or("no CUDA device for the Vulkan one")?;
        let mut dev = 0;
        // SAFETY: cuInit ran in device_uuids; a valid ordinal; before the primary context exists.
        unsafe {
            check(sys::cuDeviceGet(&mut dev, ordinal as i32), "cuDeviceGet")?;
            check(sys::cuDevicePrimaryCtxSetFlags_v2(dev, flags as u32), "cuDevicePrimaryCtxSetFlags")?;
        }
        println!("CUDA scheduling: {sched}");
    }
    let cuda = Cuda::for_vulkan(&ctxs[0])?;
    let cu_ctx = cuda.context().cu_ctx();
    let stream = cuda.stream().cu_stream();
    let own = DeviceAllocation::new(&cuda, 256)?;

    // A second CUDA context on the same device, for the CUDA ↔ CUDA alternation.
    let (ctx2, stream2, own2) = {
        let (mut c, mut s, mut p) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
        // SAFETY: creates a context, a stream and 256 bytes in it; destroyed at the end.
        unsafe {
            check(sys::cuCtxCreate_v2(&mut c, 0, cuda.ordinal() as i32), "cuCtxCreate")?;
            check(sys::cuStreamCreate(&mut s, 0), "cuStreamCreate")?;
            check(sys::cuMemAlloc_v2(&mut p, 256), "cuMemAlloc")?;
        }
        (c, s, p)
    };

    println!("{} (Vulkan and CUDA), {iters} iterations per line", ctxs[0].device_name());
    report("cu: CUDA memset + sync, alone", measure(iters, || {
        let t = Instant::now();
        cuda_tiny(cu_ctx, stream, own.device_ptr())?;
        Ok(us(t))
    })?);
    report("cu-cu: two CUDA contexts", measure(iters, || {
        let t = Instant::now();
        cuda_tiny(cu_ctx, stream, own.device_ptr())?;
        cuda_tiny(ctx2, stream2, own2)?;
        Ok(us(t))
    })?);
    {
        let a = buffer(&ctxs[0], 256)?;
        let b = buffer(&other, 256)?;
        report("vk-vk: two Vulkan devices", measure(iters, || {
            let t = Instant::now();
            a.fill_synced(1, None, None, None)?;
            b.fill_synced(1, None, None, None)?;
            Ok(us(t))
        })?);
    }

    let frame = 3840 * 2160 * 4;
    for (kind, ctx) in kinds.iter().zip(&ctxs) {
        println!("Vulkan queue: {kind:?} (family {}, {:?})", ctx.queue_family(), ctx.queue_flags());
        let tiny = buffer(ctx, 256)?;
        let big = buffer(ctx, frame)?;
        let (d, f) = tiny.export()?;
        let counter = cuda.import_memory(&d, f)?;
        let (d, f) = big.export()?;
        let big_cuda = cuda.import_memory(&d, f)?;
        let scratch = DeviceAllocation::new(&cuda, frame as usize)?;
        let sem = SharedSemaphore::new_timeline(ctx)?;
        let csem = cuda.import_semaphore(sem.export()?)?;
        // Counter and semaphore values only grow.
        let mut next = 0u32;

        report("vk: Vulkan fill + fence, alone", measure(iters, || {
            next += 1;
            let t = Instant::now();
            tiny.fill_synced(next, None, None, None)?;
            Ok(us(t))
        })?);
        report("alt: vk then cu, unrelated memory", measure(iters, || {
            next += 1;
            let t = Instant::now();
            tiny.fill_synced(next, None, None, None)?;
            cuda_tiny(cu_ctx, stream, own.device_ptr())?;
            Ok(us(t))
        })?);
        report("vk-big: 4K frame fill + fence", measure(iters, || {
            let t = Instant::now();
            big.fill_synced(7, None, None, None)?;
            Ok(us(t))
        })?);
        report("cu-big: 4K frame copy + sync", measure(iters, || {
            let t = Instant::now();
            scratch.copy_from(&cuda, big_cuda.device_ptr(), frame as usize)?;
            cuda.synchronize()?;
            Ok(us(t))
        })?);
        report("alt-big: vk fill, cu copy (shared)", measure(iters, || {
            let t = Instant::now();
            big.fill_synced(7, None, None, None)?;
            scratch.copy_from(&cuda, big_cuda.device_ptr(), frame as usize)?;
            cuda.synchronize()?;
            Ok(us(t))
        })?);
        report("counter: vk → cu, wait queued first", measure(iters, || {
            next += 1;
            counter.wait_counter(&cuda, 0, next)?;
            // SAFETY: live stream and allocation.
            check(unsafe { sys::cuMemsetD32Async(own.device_ptr(), 1, 64, stream) }, "cuMemsetD32Async")?;
            let t = Instant::now();
            let s = tiny.fill_async(next, None, None, None)?;
            cuda.synchronize()?;
            let dt = us(t);
            s.wait()?;
            Ok(dt)
        })?);
        report("counter-after: wait queued after", measure(iters, || {
            next += 1;
            let t = Instant::now();
            let s = tiny.fill_async(next, None, None, None)?;
            counter.wait_counter(&cuda, 0, next)?;
            // SAFETY: live stream and allocation.
            check(unsafe { sys::cuMemsetD32Async(own.device_ptr(), 1, 64, stream) }, "cuMemsetD32Async")?;
            cuda.synchronize()?;
            let dt = us(t);
            s.wait()?;
            Ok(dt)
        })?);
        report("semaphore: vk → cu, wait first", measure(iters, || {
            next += 1;
            csem.wait(&cuda, next as u64)?;
            // SAFETY: live stream and allocation.
            check(unsafe { sys::cuMemsetD32Async(own.device_ptr(), 1, 64, stream) }, "cuMemsetD32Async")?;
            let t = Instant::now();
            let s = tiny.fill_async(next, None, Some((&sem, next as u64)), None)?;
            cuda.synchronize()?;
            let dt = us(t);
            s.wait()?;
            Ok(dt)
        })?);
        report("semaphore back: cu → vk (GPU wait)", measure(iters, || {
            next += 1;
            let t = Instant::now();
            // SAFETY: live stream and allocation.
            check(unsafe { sys::cuMemsetD32Async(own.device_ptr(), 1, 64, stream) }, "cuMemsetD32Async")?;
            csem.signal(&cuda, next as u64)?;
            tiny.fill_synced(next, Some((&sem, next as u64)), None, None)?;
            let dt = us(t);
            cuda.synchronize()?;
            Ok(dt)
        })?);
    }
    // SAFETY: made above; nothing uses them any more.
    unsafe {
        sys::cuCtxSetCurrent(ctx2);
        sys::cuMemFree_v2(own2);
        sys::cuStreamDestroy_v2(stream2);
        sys::cuCtxDestroy_v2(ctx2);
    }
    Ok(())
}
