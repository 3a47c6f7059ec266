//! Vulkan → CUDA on a real NVIDIA GPU: memory (plain and dedicated) both ways, frame loops
//! ordered by imported timeline semaphores and by binary ones (the fallback), and the counter
//! fast path checked byte for byte.
//! Each test prints SKIPPED and passes where there is no CUDA driver or the Vulkan device is
//! not a CUDA device (CI's lavapipe); `scripts/gpu-check.sh` runs them on the GPU machine.

mod common;

use common::{assert_clean, open_fds, setup, setup_on, skipped};
use cudarc::driver::sys;
use extmem::frames::{Frame, FrameSync, Role};
use extmem::sync::{SemaphoreKind, SharedSemaphore};
use extmem::{pattern, vk, BufferDesc, Context, Dedicated, HandleType, Handoff, QueueKind, SharedMemory};
use extmem_cuda::{CounterWait, Cuda, DeviceAllocation, Error};
use std::sync::Arc;

fn buffer(ctx: &Arc<Context>, size: u64, dedicated: Dedicated) -> SharedMemory {
    let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    SharedMemory::new_buffer(ctx, desc, HandleType::OpaqueFd, dedicated).unwrap()
}

#[test]
fn without_cuda_the_crate_says_so_instead_of_panicking() {
    if extmem_cuda::available() {
        let e = Cuda::for_device_uuid([0; 16]).err().expect("no device has the zero UUID");
        assert!(e.to_string().contains("is not a CUDA device") && e.to_string().contains("CUDA device 0"), "{e}");
    } else {
        assert!(matches!(Cuda::for_device_uuid([0; 16]), Err(Error::NoDriver)));
    }
}

#[test]
fn memory_crosses_both_ways_plain_and_dedicated_without_leaking_fds() {
    let Some((ctx, cuda)) = setup("memory") else { return };
    for dedicated in [Dedicated::Always, Dedicated::Never] {
        let len = 4 << 20;
        let shared = buffer(&ctx, len as u64, dedicated);
        shared.write(&pattern::fill(len, 1), Handoff::host()).unwrap();
        let (desc, fd) = shared.export().unwrap();
        let mem = cuda.import_memory(&desc, fd).unwrap();
        assert_eq!(mem.len(), len);
        assert_eq!(
            pattern::first_mismatch(&mem.to_host(&cuda).unwrap(), 1),
            None,
            "{dedicated:?}: CUDA reads Vulkan's bytes"
        );
        mem.from_host(&cuda, &pattern::fill(len, 2)).unwrap();
        assert_eq!(
            pattern::first_mismatch(&shared.read(Handoff::host()).unwrap(), 2),
            None,
            "{dedicated:?}: Vulkan reads CUDA's bytes"
        );
        drop(mem);
        let before = open_fds();
        for _ in 0..50 {
            let (desc, fd) = shared.export().unwrap();
            drop(cuda.import_memory(&desc, fd).unwrap());
        }
        assert_eq!(open_fds(), before, "{dedicated:?}: imports leaked descriptors");
    }
    // A descriptor CUDA refuses (a plain memfd) is closed, not leaked.
    let shared = buffer(&ctx, 1 << 20, Dedicated::Always);
    let (desc, _) = shared.export().unwrap();
    let before = open_fds();
    let bogus = rustix::fs::memfd_create("not-vulkan", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert!(cuda.import_memory(&desc, bogus).is_err());
    assert_eq!(open_fds(), before);
    drop(shared);
    assert_clean(&ctx);
}

/// On the general queue and on a transfer-only one (the copy engines, the fast choice next to
/// CUDA: see `extmem bench --cuda`).
const QUEUES: [QueueKind; 2] = [QueueKind::General, QueueKind::Transfer];

#[test]
fn semaphore_orders_vulkan_and_cuda_on_the_gpu_every_frame() {
    for queue in QUEUES {
        semaphore_frames(queue);
    }
}

fn semaphore_frames(queue: QueueKind) {
    let Some((ctx, cuda)) = setup_on("semaphore", queue) else { return };
    let len = 1 << 20;
    let shared = buffer(&ctx, len as u64, Dedicated::Always);
    let (desc, fd) = shared.export().unwrap();
    let mem = cuda.import_memory(&desc, fd).unwrap();
    let sem = SharedSemaphore::new_timeline(&ctx).unwrap();
    let csem = cuda.import_semaphore(sem.export().unwrap()).unwrap();
    let scratch = DeviceAllocation::new(&cuda, len).unwrap();
    let vulkan = FrameSync::new(Role::Producer).semaphore(Some(&sem));
    for frame in 0..100u64 {
        let f = Frame::new(frame);
        // CUDA's side is queued first: it must wait on the GPU for Vulkan's frame.
        csem.wait(&cuda, f.ready()).unwrap();
        scratch.copy_from(&cuda, mem.device_ptr(), len).unwrap();
        // SAFETY: the mapping holds `len` bytes; asynchronous on the stream.
        unsafe { sys::cuMemsetD8Async(mem.device_ptr(), (frame % 251) as u8, len, cuda.stream().cu_stream()) }
            .result()
            .unwrap();
        csem.signal(&cuda, f.done()).unwrap();
        // Vulkan writes frame n (after CUDA's previous frame), then reads CUDA's answer.
        shared.write(&pattern::fill(len, frame), vulkan.around(f)).unwrap();
        let back = shared.read(vulkan.after_peer(f)).unwrap();
        assert!(back.iter().all(|&b| b == (frame % 251) as u8), "{queue:?} frame {frame}: Vulkan sees CUDA's write");
        assert_eq!(
            pattern::first_mismatch(&scratch.to_host(&cuda).unwrap(), frame),
            None,
            "{queue:?} frame {frame}: CUDA saw Vulkan's frame"
        );
    }
    cuda.synchronize().unwrap();
    drop((csem, mem));
    drop((sem, shared));
    assert_clean(&ctx);
}

#[test]
fn host_memory_from_vulkan_is_registered_with_cuda_both_ways() {
    let Some((ctx, cuda)) = setup("host memory") else { return };
    if !ctx.supports_handle_type(HandleType::HostAllocation) {
        skipped("host memory", "the Vulkan device has no VK_EXT_external_memory_host");
        return;
    }
    let len = 3 << 20;
    let desc =
        BufferDesc { size: len as u64, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    let shared = SharedMemory::new_buffer(&ctx, desc, HandleType::HostAllocation, Dedicated::Always).unwrap();
    // Fills the caches of staging memory and reusable fences (a descriptor each on some
    // drivers) before counting.
    shared.write(&pattern::fill(len, 99), Handoff::host()).unwrap();
    let _ = shared.read(Handoff::host()).unwrap();
    let before = open_fds();
    for round in 0..3u64 {
        let (desc, fd) = shared.export().unwrap();
        let mem = cuda.import_memory(&desc, fd).unwrap();
        assert_eq!(mem.len(), len);
        shared.write(&pattern::fill(len, round), Handoff::host()).unwrap();
        assert_eq!(
            pattern::first_mismatch(&mem.to_host(&cuda).unwrap(), round),
            None,
            "round {round}: CUDA reads Vulkan's bytes"
        );
        mem.from_host(&cuda, &pattern::fill(len, 50 + round)).unwrap();
        assert_eq!(
            pattern::first_mismatch(&shared.read(Handoff::host()).unwrap(), 50 + round),
            None,
            "round {round}: Vulkan reads CUDA's bytes"
        );
        drop(mem);
    }
    assert_eq!(open_fds(), before, "each import's memfd is closed with it");
    drop(shared);
    assert_clean(&ctx);
}

#[test]
fn binary_semaphores_order_vulkan_and_cuda_where_timelines_cannot_be_shared() {
    let Some((ctx, cuda)) = setup("binary semaphores") else { return };
    let len = 1 << 20;
    let shared = buffer(&ctx, len as u64, Dedicated::Always);
    let (desc, fd) = shared.export().unwrap();
    let mem = cuda.import_memory(&desc, fd).unwrap();
    // One semaphore each way: a binary semaphore's signal is consumed by one wait.
    let to_cuda = SharedSemaphore::new_binary(&ctx).unwrap();
    let to_vulkan = SharedSemaphore::new_binary(&ctx).unwrap();
    let cuda_waits = cuda.import_semaphore_as(to_cuda.export().unwrap(), SemaphoreKind::Binary).unwrap();
    let cuda_signals = cuda.import_semaphore_as(to_vulkan.export().unwrap(), SemaphoreKind::Binary).unwrap();
    assert_eq!(cuda_waits.kind(), SemaphoreKind::Binary);
    let scratch = DeviceAllocation::new(&cuda, len).unwrap();
    for frame in 0..100u64 {
        // Each signal is queued before the wait that consumes it: Vulkan's frame (signal), then
        // CUDA's wait, copy, answer and signal, then Vulkan's read (wait). Values are ignored.
        shared.write(&pattern::fill(len, frame), Handoff::host().signal(&to_cuda, 0)).unwrap();
        cuda_waits.wait(&cuda, 0).unwrap();
        scratch.copy_from(&cuda, mem.device_ptr(), len).unwrap();
        // SAFETY: the mapping holds `len` bytes; asynchronous on the stream.
        unsafe { sys::cuMemsetD8Async(mem.device_ptr(), (frame % 251) as u8, len, cuda.stream().cu_stream()) }
            .result()
            .unwrap();
        cuda_signals.signal(&cuda, 0).unwrap();
        let back = shared.read(Handoff::host().wait(&to_vulkan, 0)).unwrap();
        assert!(back.iter().all(|&b| b == (frame % 251) as u8), "frame {frame}: Vulkan sees CUDA's write");
        assert_eq!(
            pattern::first_mismatch(&scratch.to_host(&cuda).unwrap(), frame),
            None,
            "frame {frame}: CUDA saw Vulkan's frame"
        );
    }
    cuda.synchronize().unwrap();
    drop((cuda_waits, cuda_signals, mem));
    drop((to_cuda, to_vulkan, shared));
    assert_clean(&ctx);
}

#[test]
fn counter_fast_path_delivers_every_byte_of_every_frame() {
    for queue in QUEUES {
        counter_frames(queue);
    }
}

fn counter_frames(queue: QueueKind) {
    let Some((ctx, cuda)) = setup_on("counter", queue) else { return };
    let len = 1 << 20;
    let frame_mem = buffer(&ctx, len as u64, Dedicated::Always);
    let counter = buffer(&ctx, 256, Dedicated::Always);
    let (d1, f1) = frame_mem.export().unwrap();
    let (d2, f2) = counter.export().unwrap();
    let (cframe, ccounter) = (cuda.import_memory(&d1, f1).unwrap(), cuda.import_memory(&d2, f2).unwrap());
    let scratch = DeviceAllocation::new(&cuda, len).unwrap();
    for frame in 1..=300u32 {
        ccounter.wait_counter(&cuda, 0, frame).unwrap();
        scratch.copy_from(&cuda, cframe.device_ptr(), len).unwrap();
        frame_mem.write(&pattern::fill(len, frame as u64), Handoff::host().counter(&counter, 0, frame)).unwrap();
        assert_eq!(
            pattern::first_mismatch(&scratch.to_host(&cuda).unwrap(), frame as u64),
            None,
            "{queue:?} frame {frame}"
        );
    }
    drop((cframe, ccounter));
    drop((frame_mem, counter));
    assert_clean(&ctx);
}
