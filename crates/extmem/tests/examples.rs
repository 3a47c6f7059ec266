//! The runnable examples, run as their users run them: each starts its second process and
//! exits non-zero on any mismatch or validation message.

use std::path::PathBuf;
use std::process::Command;

/// An example binary `cargo test` built next to this test (`target/<profile>/examples`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps").join("examples");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it with `cargo build -p extmem --example {name}`", path.display());
    path
}

#[test]
fn ash_own_device_exports_a_buffer_and_an_image_to_another_process() {
    let out = Command::new(example("ash_own_device")).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ash_own_device failed: {stdout}");
    assert!(stdout.contains("1179648 bytes of a buffer and an image checked (validation layer on)"), "{stdout}");
}
