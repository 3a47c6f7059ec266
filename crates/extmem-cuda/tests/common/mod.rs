//! Shared set-up of the CUDA tests: saying SKIPPED past the harness's output capture, the
//! CUDA driver check, and a validated Vulkan context with its matching CUDA device.

#![allow(dead_code)]

use extmem::{Context, ContextOptions, QueueKind};
use extmem_cuda::{Cuda, Error};
use std::sync::Arc;

/// Says a test was skipped, past the test harness's output capture (which would hide it).
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether a CUDA driver is present (after saying SKIPPED with `hint`, where to run the test,
/// when it is not); sets `XDG_RUNTIME_DIR` for the validation layer first.
pub fn cuda_driver(test: &str, hint: &str) -> bool {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before any thread of this test touches the environment or Vulkan.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    if !extmem_cuda::available() {
        skipped(test, &format!("no CUDA driver on this machine; {hint}"));
        return false;
    }
    true
}

/// A validated context submitting to the family `queue` asks for, and the CUDA device with
/// its UUID; `None` (after saying SKIPPED) without CUDA or where the Vulkan device is not one.
pub fn setup_on(test: &str, queue: QueueKind) -> Option<(Arc<Context>, Cuda)> {
    if !cuda_driver(test, "run scripts/gpu-check.sh on a GPU machine") {
        return None;
    }
    let ctx = Context::new(&ContextOptions::default().validation(true).queue(queue)).expect("Vulkan context");
    match Cuda::for_vulkan(&ctx) {
        Ok(cuda) => Some((ctx, cuda)),
        Err(Error::NoMatchingDevice(why)) => {
            skipped(test, &why);
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// [`setup_on`] the general queue.
pub fn setup(test: &str) -> Option<(Arc<Context>, Cuda)> {
    setup_on(test, QueueKind::General)
}

/// The descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Fails with the validation layer's messages, if it said anything.
pub fn assert_clean(ctx: &Context) {
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "validation: {}", m.join("\n"));
}
