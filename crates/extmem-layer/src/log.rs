//! Optional diagnostics: set `EXTMEM_LOG=1` to have the layer say what it does on stderr.

use std::sync::LazyLock;

/// Whether `EXTMEM_LOG` asks for diagnostics (read once).
pub static ENABLED: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("EXTMEM_LOG").is_some_and(|v| !v.is_empty() && v != "0"));

/// Prints a line on stderr when `EXTMEM_LOG` is set.
macro_rules! layer_log {
    ($($arg:tt)*) => {
        if *$crate::log::ENABLED {
            eprintln!("[extmem-layer] {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use layer_log;
