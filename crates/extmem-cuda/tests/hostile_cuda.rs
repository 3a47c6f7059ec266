//! A hostile producer against the CUDA consumer and, on the same NVIDIA device, the Vulkan one:
//! descriptors that are not memory, forged sizes and offsets, a descriptor claiming more than
//! the exported allocation, blocks past the consumer's limit. Each ends in a clear error, with
//! this process's descriptor count unchanged. NVIDIA's opaque fd is a character device, whose
//! size the kernel cannot tell: there, a claim larger than the export is the driver's to refuse,
//! and this test records that it does. Prints SKIPPED and passes without CUDA.

mod common;

use extmem::pool::{BlockDesc, Pool, PoolImporter, PoolOptions};
use extmem::{vk, BufferDesc, Dedicated, Descriptor, HandleType, SharedMemory};
use extmem_cuda::PoolMapper;
use std::os::fd::{AsFd, OwnedFd};

fn memfd(len: u64, sealed: bool) -> OwnedFd {
    let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
    let fd = rustix::fs::memfd_create("hostile", flags).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    if sealed {
        rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW).unwrap();
    }
    fd
}

fn says(what: &str, outcome: Result<(), String>, wants: &[&str], failed: &mut Vec<String>) {
    eprintln!("{what}: {outcome:?}");
    match outcome {
        Ok(()) => failed.push(format!("{what}: accepted")),
        Err(e) if !wants.iter().any(|w| e.contains(w)) => failed.push(format!("{what}: {e} (should say {wants:?})")),
        Err(_) => {}
    }
}

#[test]
fn hostile_descriptors_are_refused_by_cuda_and_vulkan_on_nvidia() {
    let Some((ctx, cuda)) = common::setup("hostile_cuda") else { return };
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let shared =
        SharedMemory::new_buffer(&ctx, BufferDesc::new(1 << 20, usage), HandleType::OpaqueFd, Dedicated::Never)
            .unwrap();
    let (good, fd) = shared.export().unwrap();
    eprintln!(
        "the export: {:?}, allocation_size {}",
        extmem::fdkind::classify(fd.as_fd()).unwrap(),
        good.allocation_size
    );
    drop(cuda.import_memory(&good, fd).expect("a good import"));
    let before = common::open_fds();
    let mut failed = Vec::new();
    let cuda_case = |change: &dyn Fn(&mut Descriptor, OwnedFd) -> OwnedFd| {
        let (mut d, fd) = shared.export().unwrap();
        let fd = change(&mut d, fd);
        cuda.import_memory(&d, fd).map(drop).map_err(|e| e.to_string())
    };
    let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap().0;
    says("cuda: a pipe", cuda_case(&|_, _| pipe()), &["a pipe or FIFO"], &mut failed);
    says("cuda: an unsealed memfd", cuda_case(&|_, _| memfd(1 << 20, false)), &["not sealed"], &mut failed);
    says("cuda: a sealed 4 KiB memfd", cuda_case(&|_, _| memfd(4096, true)), &["holds 4096 bytes"], &mut failed);
    says(
        "cuda: size 0",
        cuda_case(&|d, fd| {
            d.allocation_size = 0;
            fd
        }),
        &["allocation_size"],
        &mut failed,
    );
    says(
        "cuda: offset past the end",
        cuda_case(&|d, fd| {
            d.offset = d.allocation_size + 4096;
            fd
        }),
        &["offset"],
        &mut failed,
    );
    says(
        "cuda: a buffer past the allocation",
        cuda_case(&|d, fd| {
            d.resource = extmem::ResourceDesc::Buffer(BufferDesc::new(d.allocation_size * 2, usage));
            fd
        }),
        &["does not fit"],
        &mut failed,
    );
    says(
        "cuda: claims 16x the exported allocation",
        cuda_case(&|d, fd| {
            d.allocation_size *= 16;
            d.resource = extmem::ResourceDesc::Buffer(BufferDesc::new(d.allocation_size, usage));
            fd
        }),
        &["cuImportExternalMemory", "cuExternalMemoryGetMappedBuffer"],
        &mut failed,
    );
    // The Vulkan importer, the same claim.
    let vulkan_case = |change: &dyn Fn(&mut Descriptor)| {
        let (mut d, fd) = shared.export().unwrap();
        change(&mut d);
        SharedMemory::import(&ctx, &d, fd).map(drop).map_err(|e| e.to_string())
    };
    says(
        "vulkan: claims 16x the exported allocation",
        vulkan_case(&|d| d.allocation_size *= 16),
        &["vkAllocateMemory", "fault past its end"],
        &mut failed,
    );
    assert_eq!(common::open_fds(), before, "descriptors leaked by the refused imports");

    // The pool: a pipe, a block claiming more than it is, and more blocks than the limit.
    let pool = Pool::new(&ctx, PoolOptions::default().block_size(1 << 20)).unwrap();
    let _p = pool.buffer(BufferDesc::new(4096, usage)).unwrap();
    let (block, _) = pool.export_block(0).unwrap();
    let mut mapper = PoolMapper::new();
    let before = common::open_fds();
    let r = mapper.add_block(&cuda, &BlockDesc { block: 100, ..block }, pipe()).map_err(|e| e.to_string());
    says("pool mapper: a pipe", r, &["a pipe or FIFO"], &mut failed);
    let (_, fd) = pool.export_block(0).unwrap();
    let r = mapper
        .add_block(&cuda, &BlockDesc { block: 101, size: block.size * 16, ..block }, fd)
        .map_err(|e| e.to_string());
    says(
        "pool mapper: a block claiming 16x its size",
        r,
        &["cuImportExternalMemory", "cuExternalMemoryGetMappedBuffer"],
        &mut failed,
    );
    let mut importer = PoolImporter::new(&ctx);
    let (_, fd) = pool.export_block(0).unwrap();
    let r = importer.add_block(&BlockDesc { size: block.size * 16, ..block }, fd).map_err(|e| e.to_string());
    says("pool importer: a block claiming 16x its size", r, &["vkAllocateMemory", "fault past its end"], &mut failed);
    // The same block exported again and again under new numbers: each is memory, the 257th is
    // past the limit.
    let mut first_refusal = None;
    for n in 0..300u32 {
        let (_, fd) = pool.export_block(0).unwrap();
        if let Err(e) = mapper.add_block(&cuda, &BlockDesc { block: n, ..block }, fd) {
            first_refusal = Some((n, e.to_string()));
            break;
        }
    }
    eprintln!("pool mapper, 300 blocks: {first_refusal:?}");
    match first_refusal {
        Some((256, e)) if e.contains("at most 256 blocks") => {}
        other => failed.push(format!("pool mapper, 300 blocks: {other:?}")),
    }
    drop(mapper);
    drop(importer);
    assert_eq!(common::open_fds(), before, "descriptors leaked by the pool cases");
    assert!(failed.is_empty(), "{} case(s) failed:\n{}", failed.len(), failed.join("\n"));
    common::assert_clean(&ctx);
}
