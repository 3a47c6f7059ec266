//! `extmem.PoolConsumer` against a real pool producer: a Python process receives the block and
//! the hand-off. Where CUDA can map it (an NVIDIA GPU), the tensor lies at the hand-off's
//! offset and is given back; elsewhere (lavapipe) the consumer refuses with CUDA's reason, the
//! producer hears it and holds nothing for it.

mod common;

use extmem::pool::{Pool, PoolLink, PoolOptions};
use extmem::transport::socket::{socket_dir, Listener};
use extmem::{vk, BufferDesc, Context, ContextOptions, PathKind};
use std::time::Duration;

const CONSUMER: &str = r#"
import sys
import extmem
consumer = extmem.PoolConsumer(sys.argv[1])
try:
    handle, buffer = consumer.receive()
except extmem.CudaError as e:
    print(f"refused: {e}")
    # Stay until the producer's Bye: the hand-off after the block is refused too.
    while True:
        try:
            consumer.receive()
        except extmem.EndOfStream:
            sys.exit(3)
        except extmem.Error:
            pass
block, offset, size, generation = handle
assert buffer.device == "cuda" and len(buffer) <= size, (buffer, handle)
consumer.release(handle)
try:
    consumer.receive()
except extmem.EndOfStream:
    print("released")
"#;

#[test]
fn a_python_pool_consumer_holds_or_refuses_with_the_reason() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let ctx = Context::new(&ContextOptions::default().path(PathKind::Khr).validation(true)).expect("Vulkan");
    let pool = Pool::new(&ctx, PoolOptions::default().block_size(4 << 20)).unwrap();
    let path = socket_dir().join(format!("pool-py-test-{}.sock", std::process::id()));
    let listener = Listener::bind(&path).unwrap();
    let mut child = common::python().arg("-c").arg(CONSUMER).arg(&path).spawn().expect("python3");
    let channel = listener.accept(Duration::from_secs(60)).expect("the Python consumer connects");
    let mut link = PoolLink::new(&pool, &channel);
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let p = pool.buffer(BufferDesc::new(1 << 20, usage)).unwrap();
    link.share(&p).unwrap();
    match link.wait_held(&p.handle()) {
        Ok(()) => {
            link.wait_released(&p.handle()).unwrap();
            channel.send(&extmem::Message::Bye, &[]).unwrap();
            assert!(child.wait().unwrap().success(), "the Python consumer failed");
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("refused") && e.contains("CUDA"), "{e}");
            assert_eq!(pool.holders(&p.handle()), Some(0), "a refused hand-off is still held");
            channel.send(&extmem::Message::Bye, &[]).unwrap();
            assert_eq!(child.wait().unwrap().code(), Some(3), "the Python consumer did not raise CudaError");
            use std::io::Write;
            // Past the harness's capture, as the other GPU tests say it.
            let _ = writeln!(std::io::stderr(), "SKIPPED the GPU part (no CUDA here): the refusal was checked instead");
        }
    }
    drop(p);
    drop(link);
    assert_eq!(pool.stats().live, 0);
    assert!(ctx.validation_messages().is_empty(), "{:?}", ctx.validation_messages());
}
