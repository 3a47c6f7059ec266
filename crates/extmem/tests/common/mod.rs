//! Shared set-up of the library's tests: contexts on the system's driver with validation on,
//! and the open-descriptor count of this process.

#![allow(dead_code)]

use extmem::{Context, ContextOptions, PathKind, QueueKind};
use std::sync::{Arc, Mutex, MutexGuard, Once};

/// Points the loader at the layer built beside the tests (once, before any instance).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: runs once, before this process loads Vulkan; other test threads wait on
        // the `Once`.
        let dir = unsafe { extmem::layer::add_to_loader_path() };
        assert!(dir.is_some(), "no VkLayer_extmem.json above the test binary: cargo build -p extmem-layer first");
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // SAFETY: as above.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
        }
    });
}

/// A context with validation (below the layer on the NV path); panics on failure.
pub fn context(path: PathKind) -> Arc<Context> {
    context_on(path, QueueKind::General)
}

/// [`context`] submitting to the queue family `queue` asks for.
pub fn context_on(path: PathKind, queue: QueueKind) -> Arc<Context> {
    init();
    Context::new(&ContextOptions::default().path(path).validation(true).app_name("extmem test").queue(queue))
        .unwrap_or_else(|e| panic!("context ({path:?}, {queue:?}): {e}"))
}

/// Fails the test if validation said anything on `ctx`.
pub fn assert_clean(ctx: &Context) {
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "{} validation message(s):\n{}", m.len(), m.join("\n"));
}

/// Every test in a file that counts descriptors takes this lock: the count is per process,
/// so no other test of that binary may open or close descriptors meanwhile.
pub fn fd_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Resident memory of this process in bytes.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("statm");
    pages * 4096
}
