//! A pool's blocks mapped into CUDA once, every hand-off a device pointer at its offset: CUDA
//! reads what Vulkan wrote there, and refuses OPTIMAL images and blocks never sent. Prints
//! SKIPPED and passes where there is no CUDA driver or the Vulkan device is not a CUDA device.

use cudarc::driver::sys;
use extmem::pool::{Pool, PoolHandle, PoolOptions, PooledDesc};
use extmem::{vk, BufferDesc, Context, ContextOptions, ImageDesc};
use extmem_cuda::{Cuda, Error, PoolMapper};
use std::sync::Arc;

fn setup() -> Option<(Arc<Context>, Cuda)> {
    use std::io::Write;
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test touches the environment or Vulkan.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    if !extmem_cuda::available() {
        let _ = writeln!(std::io::stderr(), "SKIPPED cuda_pool: no CUDA driver on this machine");
        return None;
    }
    let ctx = Context::new(&ContextOptions::default().validation(true)).expect("Vulkan context");
    match Cuda::for_vulkan(&ctx) {
        Ok(cuda) => Some((ctx, cuda)),
        Err(Error::NoMatchingDevice(why)) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED cuda_pool: {why}");
            None
        }
        Err(e) => panic!("CUDA: {e}"),
    }
}

#[test]
fn cuda_reads_pooled_buffers_at_their_offsets() {
    let Some((ctx, cuda)) = setup() else { return };
    let pool = Pool::new(&ctx, PoolOptions::default().block_size(64 << 20)).unwrap();
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let buffers: Vec<_> = (0..3u32).map(|_| pool.buffer(BufferDesc::new(1 << 20, usage)).unwrap()).collect();
    for (i, b) in buffers.iter().enumerate() {
        let value = 0x0101_0101 * (i as u32 + 1);
        ctx.submit(|d, cmd| unsafe { d.cmd_fill_buffer(cmd, b.buffer().unwrap(), 0, vk::WHOLE_SIZE, value) }).unwrap();
    }
    let mut mapper = PoolMapper::new();
    let block = buffers[0].handle().block;
    // What PoolLink sends: the block's own descriptor (memory type included).
    let (a, b) = extmem::transport::Channel::pair().unwrap();
    let mut link = extmem::pool::PoolLink::new(&pool, &a);
    link.send_block(block).unwrap();
    let (m, mut fds) = b.recv().unwrap();
    let extmem::Message::PoolBlock(sent) = m else { panic!("got {m:?}") };
    assert_eq!((sent.block, sent.size), (block, 64 << 20));
    mapper.add_block(&cuda, &sent, fds.pop().unwrap()).unwrap();
    for (i, p) in buffers.iter().enumerate() {
        let ptr = mapper.hold(&p.desc()).unwrap();
        let mut host = vec![0u8; 1 << 20];
        // SAFETY: 1 MiB at a held pointer into a mapped block; synchronous copy.
        unsafe { sys::cuMemcpyDtoH_v2(host.as_mut_ptr().cast(), ptr.device_ptr(), host.len()) }.result().unwrap();
        assert!(host.iter().all(|&v| v == i as u8 + 1), "buffer {i} reads other bytes through CUDA");
        mapper.release(ptr).unwrap();
    }
    let optimal =
        pool.image(ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 256, 256, vk::ImageUsageFlags::TRANSFER_DST)).unwrap();
    let e = mapper.hold(&optimal.desc()).unwrap_err().to_string();
    assert!(e.contains("Vulkan consumers"), "{e}");
    let nowhere = PooledDesc { handle: PoolHandle { block: 9, ..buffers[0].handle() }, ..buffers[0].desc() };
    assert!(mapper.hold(&nowhere).unwrap_err().to_string().contains("never sent"));
    let memfd = rustix::fs::memfd_create("again", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    assert!(mapper.add_block(&cuda, &sent, memfd).unwrap_err().to_string().contains("sent twice"));
    drop(mapper);
    assert!(ctx.validation_messages().is_empty(), "{:?}", ctx.validation_messages());
}
