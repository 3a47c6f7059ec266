//! Time for the CLI's step lines and benchmarks: one monotonic clock for both processes,
//! elapsed times and medians.

use std::io::Write;
use std::time::Instant;

/// `CLOCK_MONOTONIC` in nanoseconds: one time base for both processes, so that their step
/// lines read as one timeline.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The environment variable through which the producer passes its start time.
pub const T0_VAR: &str = "EXTMEM_T0_NS";

/// Prints one step of the consumer, timed from the producer's start.
pub fn step(t0: u64, text: impl std::fmt::Display) {
    println!("[consumer] {:>9.3} ms  {text}", monotonic_ns().saturating_sub(t0) as f64 / 1e6);
    let _ = std::io::stdout().flush();
}

/// The median of `v` (the upper one of an even count); `v` must not be empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Milliseconds since `t`.
pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Microseconds since `t`.
pub fn us_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}
