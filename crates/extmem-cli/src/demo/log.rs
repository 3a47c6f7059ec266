//! The producer's step log: timed lines on stdout, kept for the JSON summary.

use crate::support::timing::monotonic_ns;
use serde::Serialize;
use std::io::Write;

/// One step, timed from the demo's start.
#[derive(Serialize)]
pub struct Step {
    ms: f64,
    what: String,
}

/// The steps so far.
pub struct Log {
    pub t0: u64,
    pub steps: Vec<Step>,
    quiet: bool,
}

impl Log {
    /// A log starting now; `quiet` keeps the lines off stdout (JSON output).
    pub fn new(quiet: bool) -> Log {
        Log { t0: monotonic_ns(), steps: Vec::new(), quiet }
    }

    /// Records (and prints) one step.
    pub fn step(&mut self, what: impl Into<String>) {
        let ms = monotonic_ns().saturating_sub(self.t0) as f64 / 1e6;
        let what = what.into();
        if !self.quiet {
            println!("[producer] {ms:>9.3} ms  {what}");
            let _ = std::io::stdout().flush();
        }
        self.steps.push(Step { ms, what });
    }
}
