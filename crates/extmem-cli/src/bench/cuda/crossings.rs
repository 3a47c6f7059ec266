//! C. One crossing with tiny work, per Vulkan queue kind, and what alternating contexts costs.

use crate::support::error::cuda_as_extmem as cu;
use crate::support::timing::{median, us_since};
use extmem::sync::SharedSemaphore;
use extmem::{
    Context, ContextOptions, Dedicated, Handoff, QueueKind,
};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::DeviceAllocation;
use extmem_cuda::{CounterWait, Cuda};
use serde::Serialize;
use std::time::Instant;
use crate::bench::cuda::util::{buffer, check, queue_name};


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

/// Crossings on each of `queues`, medians of `iters`, and the context switches.
pub fn crossings(iters: usize, queues: &[QueueKind]) -> extmem::Result<(Vec<Crossing>, ContextSwitch)> {
    let options = |queue| ContextOptions::default().app_name("extmem bench cuda").queue(queue);
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
