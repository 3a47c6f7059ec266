//! `extmem demo --torch-producer`: PyTorch fills CUDA memory that this Vulkan process imports,
//! every byte checked both ways, with validation. Needs an NVIDIA GPU with CUDA, and torch and
//! the extmem module in `python3`; elsewhere it prints SKIPPED and passes
//! (`scripts/gpu-check.sh` runs the demo on the GPU machine).

use std::process::Command;

#[test]
fn torch_fills_memory_that_vulkan_checks_byte_for_byte() {
    if !extmem_cuda::available() {
        skipped(format_args!(
            "SKIPPED torch producer: no CUDA driver on this machine (scripts/gpu-check.sh runs it on a GPU)"
        ));
        return;
    }
    let probe = Command::new("python3").args(["-c", "import torch, extmem; assert torch.cuda.is_available()"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        skipped(format_args!(
            "SKIPPED torch producer: python3 lacks torch with CUDA or the extmem module (pip install .)"
        ));
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python/examples/torch_producer.py");
    let out = Command::new(env!("CARGO_BIN_EXE_extmem"))
        .args(["demo", "--torch-producer", script, "--validate", "--frames", "3", "--width", "640", "--height", "360"])
        .output()
        .expect("run extmem");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.lines().last().is_some_and(|l| l.starts_with("PASS: 3 frame(s)")));
}

/// Says a test was skipped, past the test harness's output capture (which would hide it).
fn skipped(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
