//! A refused peer learns why: when the Python `Consumer` refuses what a producer shares, the
//! producer receives a refusal with the reason before the connection closes (as `extmem peer`
//! sends), not just the end of the connection. No Vulkan device is needed: the producer here
//! forges what it sends.

mod common;

use extmem::transport::socket::{socket_dir, Listener};
use extmem::transport::Message;
use extmem::{vk, BufferDesc, Descriptor, HandleType, ResourceDesc};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

const CONSUMER: &str = r#"
import sys, extmem
consumer = extmem.Consumer(sys.argv[1])
try:
    consumer.receive(device="cpu")
    raise SystemExit("the consumer accepted what it should refuse")
except extmem.Error as e:
    print(f"refused: {e}", flush=True)
"#;

fn descriptor(handle_type: HandleType, size: u64) -> Descriptor {
    Descriptor {
        resource: ResourceDesc::Buffer(BufferDesc::new(size, vk::BufferUsageFlags::TRANSFER_SRC)),
        handle_type,
        allocation_size: size,
        memory_type_index: 0,
        memory_type_bits: 1,
        dedicated: false,
        offset: 0,
        layout: vk::ImageLayout::UNDEFINED,
        device_uuid: [1; 16],
        driver_uuid: [2; 16],
        row_pitch: 0,
    }
}

fn memfd(len: u64) -> OwnedFd {
    extmem::host::sealed_memfd("forged", len).unwrap()
}

/// Shares `desc` with `fd` to a Python consumer and returns the refusal's detail.
fn refusal(case: &str, desc: Descriptor, fd: OwnedFd) -> String {
    let path = socket_dir().join(format!("refusal-{case}-{}.sock", std::process::id()));
    let listener = Listener::bind(&path).unwrap();
    let mut child = common::python().arg("-c").arg(CONSUMER).arg(&path).spawn().expect("python3");
    let mut channel = listener.accept(Duration::from_secs(60)).expect("the Python consumer connects");
    channel.set_timeout(Duration::from_secs(60));
    channel.send(&Message::Share(desc), &[fd.as_fd()]).unwrap();
    let answer = channel.recv();
    let status = child.wait().unwrap();
    assert!(status.success(), "{case}: the Python consumer did not refuse with an extmem error");
    match answer {
        Ok((Message::Verdict { ok: false, detail }, _)) => detail,
        other => panic!("{case}: the producer got {other:?}, not a refusal with the reason"),
    }
}

#[test]
fn the_python_consumer_tells_the_producer_why_it_refuses() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test binary reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let d = refusal("opaque-for-cpu", descriptor(HandleType::OpaqueFd, 4096), memfd(4096));
    assert!(d.contains("the CPU can map only host memory"), "{d}");
    // Host memory claiming 1 MiB in a 4 KiB memfd.
    let d = refusal("host-too-small", descriptor(HandleType::HostAllocation, 1 << 20), memfd(4096));
    assert!(d.contains("holds 4096 bytes"), "{d}");
}
