//! Diagnostics on stderr, at the level the settings give (`log_level`, or `EXTMEM_LOG=1`).

use crate::settings::{LogLevel, Settings};
use std::sync::atomic::{AtomicU8, Ordering};

/// The level in force; `UNSET` until the first instance or message decides it.
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = u8::MAX;

/// Sets the process-wide level (each `vkCreateInstance` sets its instance's; the last wins).
pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages of `level` are printed.
pub fn enabled(level: LogLevel) -> bool {
    let mut current = LEVEL.load(Ordering::Relaxed);
    if current == UNSET {
        // Before any instance: the file and the environment decide.
        // SAFETY: an empty chain.
        current = unsafe { Settings::resolve(std::ptr::null()) }.log_level as u8;
        LEVEL.store(current, Ordering::Relaxed);
    }
    current >= level as u8
}

/// Prints a line on stderr at `info` level: what the layer does.
macro_rules! layer_log {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::settings::LogLevel::Info) {
            eprintln!("[extmem-layer] {}", format_args!($($arg)*));
        }
    };
}
/// Prints a line on stderr at `error` level: a call the layer refused.
macro_rules! layer_error {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::settings::LogLevel::Error) {
            eprintln!("[extmem-layer] error: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use {layer_error, layer_log};
