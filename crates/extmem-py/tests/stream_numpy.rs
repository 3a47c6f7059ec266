//! Python streams with numpy, host memory, no GPU: a Rust publisher's frames read by
//! `extmem.subscribe(..., device="cpu")` as read-only arrays (the DLPack READ_ONLY flag), and
//! frames published by `extmem.publish` from numpy read by a Rust subscriber.

mod common;

use extmem::stream::{Memory, Publisher, StreamOptions, SubscribeOptions, Subscriber};
use extmem::{pattern, vk, Handoff, ImageDesc};
use std::time::Duration;

const SUBSCRIBER: &str = r#"
import sys
import numpy as np
import extmem
n = 0
with extmem.subscribe(sys.argv[1], device="cpu", timeout=30) as sub:
    for frame in sub:
        a = np.from_dlpack(frame)
        assert a.shape == (16, 32, 4) and a.dtype == np.uint8, a.shape
        assert not a.flags.writeable, "a subscriber's frame is read-only"
        want = np.frombuffer(extmem._testing.pattern(16 * 32 * 4, frame.index), np.uint8).reshape(16, 32, 4)
        assert (a == want).all(), f"frame {frame.index}"
        assert frame.metadata == b"m%d" % frame.index
        n += 1
assert n == 5, n
print("OK", n)
"#;

const PUBLISHER: &str = r#"
import sys
import numpy as np
import extmem
p = extmem.publish(sys.argv[1], (1000,), "uint8", device="cpu", slots=3)
import time
t = time.time()
while p.subscribers < 1:
    assert time.time() - t < 30
    time.sleep(0.01)
for n in range(4):
    with p.frame() as f:
        a = np.from_dlpack(f)
        a[:] = np.frombuffer(extmem._testing.pattern(1000, n), np.uint8)
p.close()
"#;

fn init() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any other thread of this test reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}

#[test]
fn numpy_subscribes_to_a_host_stream_read_only() {
    init();
    let name = format!("py-sub-{}", std::process::id());
    let desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 32, 16, vk::ImageUsageFlags::TRANSFER_SRC);
    let mut p = Publisher::create_host(&name, StreamOptions::image(desc).memory(Memory::Host).slots(3)).unwrap();
    let child = common::python().args(["-c", SUBSCRIBER, &name]).spawn().unwrap();
    let t = std::time::Instant::now();
    while p.subscribers() < 1 {
        assert!(t.elapsed() < Duration::from_secs(60), "the Python subscriber never joined");
        std::thread::sleep(Duration::from_millis(10));
    }
    for n in 0..5 {
        let mut slot = p.acquire().unwrap();
        slot.write_host(&pattern::fill(16 * 32 * 4, n)).unwrap();
        slot.set_metadata(format!("m{n}").as_bytes()).unwrap();
        p.publish(slot, Handoff::host()).unwrap();
    }
    drop(p);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python subscriber failed");
}

#[test]
fn numpy_publishes_to_a_rust_subscriber() {
    init();
    let name = format!("py-pub-{}", std::process::id());
    let mut child = common::python().args(["-c", PUBLISHER, &name]).spawn().unwrap();
    let o = SubscribeOptions::default().timeout(Duration::from_secs(60));
    let mut s = Subscriber::connect_host(&name, o).unwrap();
    for n in 0..4 {
        let f = s.next().unwrap().expect("a frame");
        assert_eq!(f.index(), n);
        assert_eq!(pattern::first_mismatch(&f.to_vec().unwrap(), n), None, "frame {n}");
    }
    assert!(s.next().unwrap().is_none(), "a clean end");
    assert!(child.wait().unwrap().success());
}
