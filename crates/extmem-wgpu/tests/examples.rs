//! The wgpu example, run as its users run it: it starts its consumer process and exits
//! non-zero on any mismatch or validation message outside its documented list.

use std::path::PathBuf;
use std::process::Command;

/// An example binary `cargo test` built next to this test (`target/<profile>/examples`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps").join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p extmem-wgpu --example {name}`",
        path.display()
    );
    path
}

#[test]
fn wgpu_consumer_computes_on_an_image_from_another_process() {
    let out = Command::new(example("wgpu_consumer")).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "wgpu_consumer failed: {stdout}");
    assert!(stdout.contains("4800 texels computed by wgpu checked (validation layer on both sides)"), "{stdout}");
}
