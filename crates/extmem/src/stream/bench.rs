//! The stream benchmark, as a library routine (`extmem bench stream` and
//! `cargo run --example stream_bench` call it): one run measures, each side in its own
//! process (a forked child), the stream's hand-off and the machine's own floor.
//!
//! - `stream_handoff_us`: one way, the subscriber's CLOCK_MONOTONIC when `next` returns minus
//!   the publisher's stamp at `publish`'s entry, with a polling subscriber (and publisher);
//!   `stream_handoff_sleeping_us` the same with both sleeping on futexes.
//! - `stream_round_trip_us`: publish, the subscriber takes and releases, the publisher sees the
//!   release; sleeping sides (`stream_round_trip_polling_us`: polling ones).
//! - `stream_handoffs_per_s` / `_4`: frames per second each subscriber takes with 1 and 4
//!   subscribers, the publisher going as fast as the slots allow (every, 8 slots).
//! - `syscalls_per_handoff`: the system calls the stream code of both processes made per frame
//!   in the polling run (counted by the library: futex waits and wakes, liveness polls);
//!   `voluntary_switches_per_handoff`: `getrusage`'s voluntary context switches of both.
//! - `pool_handoff_us`: the pool protocol's messages of one hand-off between two processes
//!   (`PoolShare` sent until `PoolHeld` received; the consumer's bind is not included).
//! - `futex_round_trip_us`, `poll_round_trip_us`, `socket_round_trip_us`: the floor.
//!
//! Every value is the median in µs, with its 99th percentile in the matching `*_p99_us`.
//! Frames live in host memory, so no Vulkan device is needed on either side; the size never
//! enters the hand-off. The first tenth of each series is a warm-up and not counted.

use super::floor::{fork_child, reap, socket_round_trips, word_round_trips, SharedWords};
use super::options::{Memory, Policy, StreamOptions, SubscribeOptions};
use super::publisher::Publisher;
use super::subscriber::Subscriber;
use super::wait::{monotonic_ns, syscalls, Wait};
use crate::desc::{BufferDesc, ResourceDesc};
use crate::error::{Error, Result};
use crate::pool_desc::{PoolHandle, PooledDesc};
use crate::transport::{Channel, Message};
use ash::vk;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What one run measures.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct BenchOptions {
    /// Hand-offs per series (default 20,000).
    pub frames: usize,
    /// Bytes per frame (default 4096).
    pub bytes: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { frames: 20_000, bytes: 4096 }
    }
}

impl BenchOptions {
    /// With `n` hand-offs per series.
    pub fn frames(mut self, n: usize) -> Self {
        self.frames = n.max(10);
        self
    }
}

/// The results (µs unless named otherwise); see the module documentation.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[allow(missing_docs)]
pub struct StreamBench {
    pub frames: usize,
    pub bytes: u64,
    pub stream_handoff_us: f64,
    pub stream_handoff_p99_us: f64,
    pub stream_handoff_sleeping_us: f64,
    pub stream_handoff_sleeping_p99_us: f64,
    pub stream_round_trip_us: f64,
    pub stream_round_trip_p99_us: f64,
    pub stream_round_trip_polling_us: f64,
    pub stream_round_trip_polling_p99_us: f64,
    pub stream_handoffs_per_s: f64,
    pub stream_handoffs_per_s_4: f64,
    pub syscalls_per_handoff: f64,
    pub voluntary_switches_per_handoff: f64,
    pub pool_handoff_us: f64,
    pub pool_handoff_p99_us: f64,
    pub futex_round_trip_us: f64,
    pub futex_round_trip_p99_us: f64,
    pub poll_round_trip_us: f64,
    pub poll_round_trip_p99_us: f64,
    pub socket_round_trip_us: f64,
    pub socket_round_trip_p99_us: f64,
}

impl StreamBench {
    /// One JSON object of plain numbers.
    pub fn to_json(&self) -> String {
        let v: Vec<(&str, f64)> = vec![
            ("frames", self.frames as f64),
            ("bytes", self.bytes as f64),
            ("stream_handoff_us", self.stream_handoff_us),
            ("stream_handoff_p99_us", self.stream_handoff_p99_us),
            ("stream_handoff_sleeping_us", self.stream_handoff_sleeping_us),
            ("stream_handoff_sleeping_p99_us", self.stream_handoff_sleeping_p99_us),
            ("stream_round_trip_us", self.stream_round_trip_us),
            ("stream_round_trip_p99_us", self.stream_round_trip_p99_us),
            ("stream_round_trip_polling_us", self.stream_round_trip_polling_us),
            ("stream_round_trip_polling_p99_us", self.stream_round_trip_polling_p99_us),
            ("stream_handoffs_per_s", self.stream_handoffs_per_s),
            ("stream_handoffs_per_s_4", self.stream_handoffs_per_s_4),
            ("syscalls_per_handoff", self.syscalls_per_handoff),
            ("voluntary_switches_per_handoff", self.voluntary_switches_per_handoff),
            ("pool_handoff_us", self.pool_handoff_us),
            ("pool_handoff_p99_us", self.pool_handoff_p99_us),
            ("futex_round_trip_us", self.futex_round_trip_us),
            ("futex_round_trip_p99_us", self.futex_round_trip_p99_us),
            ("poll_round_trip_us", self.poll_round_trip_us),
            ("poll_round_trip_p99_us", self.poll_round_trip_p99_us),
            ("socket_round_trip_us", self.socket_round_trip_us),
            ("socket_round_trip_p99_us", self.socket_round_trip_p99_us),
        ];
        let body: Vec<String> = v.iter().map(|(k, x)| format!("  \"{k}\": {}", round(*x))).collect();
        format!("{{\n{}\n}}", body.join(",\n"))
    }
}

fn round(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// Median and 99th percentile in µs of durations in ns, after a tenth of warm-up.
fn stats(mut ns: Vec<u64>) -> (f64, f64) {
    let skip = ns.len() / 10;
    ns.drain(..skip);
    if ns.is_empty() {
        return (0.0, 0.0);
    }
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

/// Runs every measurement.
pub fn run(options: &BenchOptions) -> Result<StreamBench> {
    let n = options.frames;
    let mut b = StreamBench { frames: n, bytes: options.bytes, ..Default::default() };
    (b.futex_round_trip_us, b.futex_round_trip_p99_us) = stats(word_round_trips(n, true)?);
    (b.poll_round_trip_us, b.poll_round_trip_p99_us) = stats(word_round_trips(n, false)?);
    (b.socket_round_trip_us, b.socket_round_trip_p99_us) = stats(socket_round_trips(n)?);
    (b.pool_handoff_us, b.pool_handoff_p99_us) = stats(pool_round_trips(n)?);
    let polling = handoffs(options, Wait::Poll)?;
    (b.stream_handoff_us, b.stream_handoff_p99_us) = stats(polling.one_way);
    (b.stream_round_trip_polling_us, b.stream_round_trip_polling_p99_us) = stats(polling.round_trip);
    b.syscalls_per_handoff = polling.syscalls as f64 / n as f64;
    b.voluntary_switches_per_handoff = polling.switches as f64 / n as f64;
    let sleeping = handoffs(options, Wait::Sleep)?;
    (b.stream_handoff_sleeping_us, b.stream_handoff_sleeping_p99_us) = stats(sleeping.one_way);
    (b.stream_round_trip_us, b.stream_round_trip_p99_us) = stats(sleeping.round_trip);
    b.stream_handoffs_per_s = throughput(options, 1)?;
    b.stream_handoffs_per_s_4 = throughput(options, 4)?;
    Ok(b)
}

struct Series {
    one_way: Vec<u64>,
    round_trip: Vec<u64>,
    syscalls: u64,
    switches: u64,
}

fn voluntary_switches() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_nvcsw as u64
}

fn bench_name() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("bench-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn stream_options(bytes: u64, slots: u32, wait: Wait) -> StreamOptions {
    StreamOptions::buffer(BufferDesc::new(bytes, vk::BufferUsageFlags::TRANSFER_SRC))
        .memory(Memory::Host)
        .slots(slots)
        .policy(Policy::Every)
        .wait(wait)
        .acquire_timeout(Duration::from_secs(30))
}

/// A forked subscriber of `name` that waits as `wait` says and records each frame's one-way
/// latency into `words[2..]`, its syscalls into `words[0]` and its switches into `words[1]`.
fn subscriber_child(name: &str, wait: Wait, words: &SharedWords, n: usize) -> Result<libc::pid_t> {
    fork_child(|| {
        let o = SubscribeOptions::default().wait(wait).timeout(Duration::from_secs(30));
        let Ok(mut s) = Subscriber::connect_host(name, o) else { return };
        let (calls, switches) = (syscalls(), voluntary_switches());
        let mut i = 0;
        while let Ok(Some(f)) = s.next() {
            if i < n {
                words.u64(2 + i).store(monotonic_ns().saturating_sub(f.timestamp_ns()), Ordering::Relaxed);
            }
            i += 1;
        }
        words.u64(0).store(syscalls() - calls, Ordering::Relaxed);
        words.u64(1).store(voluntary_switches() - switches, Ordering::Relaxed);
    })
}

fn wait_for_subscribers(p: &Publisher, count: usize) -> Result<()> {
    let t = Instant::now();
    while p.subscribers() < count {
        if t.elapsed() > Duration::from_secs(30) {
            return Err(Error::Peer("the benchmark's subscribers did not join within 30 s".into()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn handoffs(options: &BenchOptions, wait: Wait) -> Result<Series> {
    let n = options.frames;
    let name = bench_name();
    let words = SharedWords::new(n + 2)?;
    let child = subscriber_child(&name, wait, &words, n)?;
    let mut p = Publisher::create_host(&name, stream_options(options.bytes, 4, wait))?;
    wait_for_subscribers(&p, 1)?;
    let (calls, switches) = (syscalls(), voluntary_switches());
    let mut round_trip = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t = Instant::now();
        let slot = p.acquire()?;
        p.publish(slot, crate::shared::Handoff::host())?;
        p.wait_released(i)?;
        round_trip.push(t.elapsed().as_nanos() as u64);
    }
    let (calls, switches) = (syscalls() - calls, voluntary_switches() - switches);
    drop(p);
    reap(child);
    let one_way = (0..n).map(|i| words.u64(2 + i).load(Ordering::Relaxed)).collect();
    Ok(Series {
        one_way,
        round_trip,
        syscalls: calls + words.u64(0).load(Ordering::Relaxed),
        switches: switches + words.u64(1).load(Ordering::Relaxed),
    })
}

/// Frames per second each of `subscribers` takes, the publisher going as fast as it can.
fn throughput(options: &BenchOptions, subscribers: usize) -> Result<f64> {
    let n = options.frames as u64;
    let name = bench_name();
    let words: Vec<SharedWords> = (0..subscribers).map(|_| SharedWords::new(2)).collect::<Result<_>>()?;
    let wait = Wait::Adaptive;
    let children: Vec<_> = words.iter().map(|w| subscriber_child(&name, wait, w, 0)).collect::<Result<Vec<_>>>()?;
    let mut p = Publisher::create_host(&name, stream_options(options.bytes, 8, wait))?;
    wait_for_subscribers(&p, subscribers)?;
    let t = Instant::now();
    for _ in 0..n {
        let slot = p.acquire()?;
        p.publish(slot, crate::shared::Handoff::host())?;
    }
    p.wait_released(n - 1)?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(p);
    children.into_iter().for_each(reap);
    Ok(rate)
}

/// The pool protocol's messages of one hand-off, between two processes: `PoolShare` out,
/// `PoolHeld` back (then `PoolRelease`, not timed).
fn pool_round_trips(n: usize) -> Result<Vec<u64>> {
    let (mine, theirs) = Channel::pair()?;
    let child = fork_child(|| {
        while let Ok((Message::PoolShare(d), _)) = theirs.recv() {
            if theirs.send(&Message::PoolHeld(d.handle), &[]).is_err()
                || theirs.send(&Message::PoolRelease(d.handle), &[]).is_err()
            {
                return;
            }
        }
    })?;
    let usage = vk::BufferUsageFlags::TRANSFER_SRC;
    let mut out = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let handle = PoolHandle { block: 0, offset: 0, size: 4096, generation: i + 1 };
        let desc = PooledDesc {
            handle,
            resource: ResourceDesc::Buffer(BufferDesc::new(4096, usage)),
            layout: vk::ImageLayout::UNDEFINED,
            row_pitch: 0,
        };
        let t = Instant::now();
        mine.send(&Message::PoolShare(desc), &[])?;
        let (held, _) = mine.recv()?;
        out.push(t.elapsed().as_nanos() as u64);
        let (released, _) = mine.recv()?;
        if held != Message::PoolHeld(handle) || released != Message::PoolRelease(handle) {
            return Err(Error::Protocol("the benchmark's pool consumer answered wrongly".into()));
        }
    }
    mine.send(&Message::Bye, &[])?;
    reap(child);
    Ok(out)
}
