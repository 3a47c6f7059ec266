//! Leftovers and broken pipes. A producer killed with SIGINT or SIGTERM removes its socket
//! files first (a listener's `Drop` would not run); a closed stdout (`extmem caps | head -1`)
//! ends the process quietly, as it does other Unix tools, instead of a panic on `EPIPE`.
//! Sockets are written with `MSG_NOSIGNAL`, so a peer that goes away is still an error there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Socket files to remove when a terminating signal arrives.
static SOCKETS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Restores `SIGPIPE`'s default action. Call first thing in `main`.
pub fn install() {
    // SAFETY: SIG_DFL is a valid action for SIGPIPE; no handler of ours is replaced.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Removes `path` if this process is killed by SIGINT or SIGTERM (the thread that waits for
/// them starts with the first socket).
pub fn remove_on_signal(path: &Path) {
    static WATCHER: std::sync::Once = std::sync::Once::new();
    SOCKETS.lock().unwrap_or_else(|e| e.into_inner()).push(path.to_path_buf());
    WATCHER.call_once(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                for path in SOCKETS.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                    let _ = std::fs::remove_file(path);
                }
                // Die of the signal as if nobody had caught it (the exit status says so).
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
    });
}
