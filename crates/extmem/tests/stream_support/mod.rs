//! Shared set-up of the stream tests: unique stream names, child processes that run a role of
//! the same test binary, and the test pattern of a frame.

#![allow(dead_code)]

use extmem::pattern;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that makes the test binary a child running a role.
pub const ROLE: &str = "EXTMEM_STREAM_TEST_ROLE";

/// Points the socket folder somewhere private to the user.
pub fn init() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: set before any thread of this test binary reads the environment (a test
        // harness thread may, but only XDG_RUNTIME_DIR is written, once, to the same value).
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}

/// A stream name no other test (or run) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    init();
    format!("t-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Starts this test binary again as a child running `role` with `args` (the test named
/// `entry` reads them; see each test file's `child` test).
pub fn spawn(entry: &str, role: &str, args: &[&str]) -> Child {
    init();
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, format!("{role} {}", args.join(" ")))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the test binary as a child")
}

/// The role and arguments this process was started with, if it is a child.
pub fn role() -> Option<(String, Vec<String>)> {
    let v = std::env::var(ROLE).ok()?;
    let mut it = v.split_whitespace().map(str::to_owned);
    Some((it.next()?, it.collect()))
}

/// Waits for a child and returns its stdout (panics unless it exited with `code`).
pub fn finish(child: Child, code: i32) -> String {
    let out = child.wait_with_output().expect("wait for the child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(code), "child exited {:?}; it said:\n{stdout}", out.status);
    stdout
}

/// The lines a child printed after `RESULT `.
pub fn results(stdout: &str) -> Vec<String> {
    stdout.lines().filter_map(|l| l.strip_prefix("RESULT ")).map(str::to_owned).collect()
}

/// `len` bytes of frame `n`'s test pattern.
pub fn frame_bytes(len: usize, n: u64) -> Vec<u8> {
    pattern::fill(len, n)
}

/// The open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Waits until `cond` holds, up to 30 s (a bound far above any scheduling delay: what is
/// tested is that it happens, not how fast).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !cond() {
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Tests of one binary that count descriptors take this lock (the count is per process).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
