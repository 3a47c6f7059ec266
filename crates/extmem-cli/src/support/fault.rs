//! Fault injection for the tests: `EXTMEM_PEER_DIE_AT=<step>` makes a consumer process die at
//! once (SIGKILL, as a crash or the OOM killer would; no unwinding, no core file) at that step:
//! `connected`, `share`, `frame` or `pool-share`.

/// Dies here when `EXTMEM_PEER_DIE_AT` names `step`.
pub fn maybe_die(step: &str) {
    if std::env::var("EXTMEM_PEER_DIE_AT").is_ok_and(|s| s == step) {
        eprintln!("[consumer] dying at {step} (EXTMEM_PEER_DIE_AT)");
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}
