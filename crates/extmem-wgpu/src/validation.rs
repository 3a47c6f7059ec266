//! The Khronos validation layer's messages about a wgpu program, which wgpu-hal passes to the
//! `log` crate: collected here, so tests and examples can fail on any of them, except the few
//! wgpu's own calls produce with a given layer version ([`KNOWN_WGPU_MESSAGES`]).

use std::sync::Mutex;

/// Validation messages wgpu's own calls produce under the validation layer 1.3.239, as
/// (message id, text it contains). With `InstanceFlags::DEBUG`, naga writes `OpSource WGSL`
/// (source language 10) into its SPIR-V, which that layer's SPIR-V validator predates.
pub const KNOWN_WGPU_MESSAGES: &[(&str, &str)] =
    &[("UNASSIGNED-CoreValidation-Shader-InconsistentSpirv", "Invalid source language operand: 10")];

struct Collector {
    unexpected: Mutex<Vec<String>>,
    known: Mutex<usize>,
}

impl log::Log for Collector {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        // wgpu-hal logs each message as "{type:?} [{id} (0x..)]\n\t{text}".
        let text = record.args().to_string();
        if record.level() > log::Level::Warn || !text.starts_with("VALIDATION") {
            return;
        }
        if KNOWN_WGPU_MESSAGES.iter().any(|(id, what)| text.contains(id) && text.contains(what)) {
            *self.known.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        } else {
            eprintln!("validation: {text}");
            self.unexpected.lock().unwrap_or_else(|e| e.into_inner()).push(text);
        }
    }

    fn flush(&self) {}
}

static COLLECTOR: Collector = Collector { unexpected: Mutex::new(Vec::new()), known: Mutex::new(0) };

/// Makes this collector the process's `log` logger (once; later calls do nothing). Create
/// the wgpu instance with `InstanceFlags::VALIDATION` for the layer to speak.
pub fn install() {
    if log::set_logger(&COLLECTOR).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// The validation messages seen so far that are not among [`KNOWN_WGPU_MESSAGES`].
pub fn unexpected() -> Vec<String> {
    COLLECTOR.unexpected.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// How many of [`KNOWN_WGPU_MESSAGES`] were seen (and allowed).
pub fn known_seen() -> usize {
    *COLLECTOR.known.lock().unwrap_or_else(|e| e.into_inner())
}
