//! A CPU consumer: a Vulkan producer (lavapipe, Khronos validation on) shares a buffer in host
//! memory (a sealed memfd), and a Python process gets it as a kDLCPU tensor through DLPack:
//! `numpy.from_dlpack` on the same pages, both capsules (legacy and DLPack 1.0) checked, every
//! byte of every frame checked both ways.

mod common;

use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::transport::socket::{socket_dir, Listener};
use extmem::transport::Message;
use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, PathKind, SharedMemory,
};
use std::os::fd::AsFd;
use std::time::Duration;

const FRAMES: u64 = 3;

/// The consumer: every DLPack path numpy and a direct caller take, then the frame protocol.
const CONSUMER: &str = r#"
import ctypes, sys
import numpy as np
import extmem

def capsule_name(c):
    get = ctypes.pythonapi.PyCapsule_GetName
    get.restype, get.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get(c).decode()

consumer = extmem.Consumer(sys.argv[1])
shared = consumer.receive(device="cpu")
assert shared.device == "cpu" and shared.__dlpack_device__() == (1, 0), shared
n = len(shared)

# Both capsules, asked for directly.
assert capsule_name(shared.__dlpack__()) == "dltensor"
assert capsule_name(shared.__dlpack__(max_version=(0, 8))) == "dltensor"
assert capsule_name(shared.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
assert capsule_name(shared.__dlpack__(max_version=(1, 3))) == "dltensor_versioned"
assert capsule_name(shared.__dlpack__(dl_device=(1, 0), copy=False)) == "dltensor"
for bad, error in [(dict(dl_device=(2, 0)), BufferError), (dict(stream=1), ValueError)]:
    try:
        shared.__dlpack__(**bad)
        raise SystemExit(f"__dlpack__({bad}) did not fail")
    except error:
        pass

class Legacy:
    """A producer as DLPack before 1.0 knew it: numpy falls back to the legacy capsule."""
    def __init__(self, inner): self.inner = inner
    def __dlpack__(self, stream=None): return self.inner.__dlpack__(stream=stream)
    def __dlpack_device__(self): return self.inner.__dlpack_device__()

class Spy:
    """Records what numpy asks for and the capsule it gets."""
    def __init__(self, inner): self.inner, self.asked, self.got = inner, None, None
    def __dlpack__(self, **kwargs):
        self.asked = kwargs
        capsule = self.inner.__dlpack__(**kwargs)
        self.got = capsule_name(capsule)
        return capsule
    def __dlpack_device__(self): return self.inner.__dlpack_device__()

spy = Spy(shared)
versioned = np.from_dlpack(spy)  # numpy >= 2.1 asks for DLPack 1.0
assert spy.asked.get("max_version", (0, 0)) >= (1, 0) and spy.got == "dltensor_versioned", (spy.asked, spy.got)
legacy = np.from_dlpack(Legacy(shared))
for a in (versioned, legacy):
    assert a.dtype == np.uint8 and a.shape == (n,), (a.dtype, a.shape)
    assert a.ctypes.data == shared.data_ptr, "zero-copy: the array is the shared pages"
# The versioned capsule says whether the memory is read-only (it is not); numpy treats a
# legacy capsule, which cannot say, as read-only.
assert versioned.flags.writeable and not legacy.flags.writeable
print(f"[numpy] numpy {np.__version__}: a {a.shape} {a.dtype} array at {a.ctypes.data:#x}, the shared pages", flush=True)

while True:
    try:
        frame = consumer.wait_ready()
    except extmem.EndOfStream:
        break
    expected = np.frombuffer(extmem._testing.pattern(n, frame), dtype=np.uint8)
    for a in (versioned, legacy):
        wrong = np.flatnonzero(a != expected)
        assert wrong.size == 0, f"frame {frame}: byte {wrong[0]} is {a[wrong[0]]}, expected {expected[wrong[0]]}"
    copied = np.from_dlpack(shared, copy=True)
    assert copied.ctypes.data != shared.data_ptr and np.array_equal(copied, expected)
    versioned[:] = np.frombuffer(extmem._testing.pattern(n, extmem._testing.writeback_seed(frame)), dtype=np.uint8)
    assert np.array_equal(copied, expected), "the copy does not follow the shared pages"
    consumer.done(frame)
print("[numpy] every frame checked", flush=True)
"#;

#[test]
fn numpy_gets_host_memory_as_a_cpu_tensor_with_both_capsules() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test binary reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let ctx =
        Context::new(&ContextOptions::default().path(PathKind::Khr).validation(true).app_name("extmem numpy test"))
            .expect("a Vulkan device (lavapipe)");
    assert!(
        ctx.supports_handle_type(HandleType::HostAllocation),
        "{} has no VK_EXT_external_memory_host",
        ctx.device_name()
    );
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let shared = SharedMemory::new_buffer(
        &ctx,
        BufferDesc { size: 1 << 20, usage },
        HandleType::HostAllocation,
        Dedicated::Never,
    )
    .unwrap();
    let len = shared.data_len().unwrap() as usize;

    let path = socket_dir().join(format!("numpy-test-{}.sock", std::process::id()));
    let listener = Listener::bind(&path).unwrap();
    let mut child = common::python().arg("-c").arg(CONSUMER).arg(&path).spawn().expect("python3");
    let channel = listener.accept(Duration::from_secs(60)).expect("the Python consumer connects");
    let frames = FrameProtocol::new(&channel, Role::Producer);
    for frame in 0..FRAMES {
        shared.write(&pattern::fill(len, frame), Handoff::host()).unwrap();
        if frame == 0 {
            let (desc, fd) = shared.export().unwrap();
            channel.send(&Message::Share(desc), &[fd.as_fd()]).unwrap();
            match channel.recv_plain("Verdict").unwrap() {
                Message::Verdict { ok: true, detail } => assert!(detail.contains("CPU"), "{detail}"),
                other => panic!("expected the consumer's verdict, got {other:?}"),
            }
        }
        // The fence of `write` has signalled: the CPU may read from FrameReady on.
        frames.signal_ready(Frame::new(frame)).unwrap();
        frames.wait_done(Frame::new(frame)).unwrap();
        let back = shared.read(Handoff::host()).unwrap();
        assert_eq!(pattern::first_mismatch(&back, pattern::writeback_seed(frame)), None, "frame {frame}'s write-back");
    }
    channel.send(&Message::Bye, &[]).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the numpy consumer failed (numpy missing? scripts/test.sh installs it in .venv)");
    drop(shared);
    let messages = ctx.validation_messages();
    assert!(messages.is_empty(), "validation: {}", messages.join("\n"));
}
