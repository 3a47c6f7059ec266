//! `extmem bench soak DURATION`: hand-offs and frames for a long time, at a gentle rate,
//! sampling the open descriptors, resident memory and device memory of both processes, so that
//! a leak shows as a slope. Writes JSON (every sample, so an interrupted run keeps its data)
//! and a short markdown summary with the slopes.

use crate::support::child::{Peer, Timeouts};
use crate::support::error::Result;
use crate::support::timing::monotonic_ns;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::transport::Message;
use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, PathKind, SharedMemory,
};
use serde::Serialize;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Soak: hand-offs and frames for DURATION at a gentle rate, sampling descriptors, resident
/// memory and device memory of both processes, so that a leak shows as a slope.
#[derive(clap::Parser)]
#[command(name = "soak")]
pub struct SoakArgs {
    /// How long: `90s`, `65m`, `1h`, `2h30m` or plain seconds.
    #[arg(value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Duration,
    /// Hand-offs per second (each a new buffer, exported, sent, imported by the peer).
    #[arg(long, default_value_t = 2.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Synchronised frames (FrameReady / FrameDone, probed by the peer) after each hand-off.
    #[arg(long, default_value_t = 4)]
    pub frames: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: u64,
    /// Bytes per shared buffer (a multiple of 64 KiB keeps host memory aligned everywhere).
    #[arg(long, default_value = "256K", value_parser = soak_bytes)]
    pub bytes: u64,
    /// Write the samples here as JSON, and the summary next to it (same name, `.md`); its
    /// folder must exist.
    #[arg(long, value_name = "FILE", value_parser = crate::support::parse::output_file)]
    pub out: Option<PathBuf>,
    /// Make the producer's memory exportable through VK_NV_external_memory (the layer).
    #[arg(long)]
    pub nv: bool,
    #[command(flatten)]
    pub timeouts: Timeouts,
}

/// The definition of `extmem bench soak`.
pub fn cli() -> Command {
    SoakArgs::command()
}

/// Runs `extmem bench soak`.
pub fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let args = SoakArgs::from_arg_matches(matches)?;
    crate::support::child::set_timeouts(args.timeouts);
    soak(&args)
}

fn soak_bytes(s: &str) -> std::result::Result<u64, String> {
    match crate::support::parse::size(s)? {
        n if (4096..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!("{s:?}: between 4K and 1G")),
    }
}

/// `90s`, `65m`, `1h`, `2h30m` or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("duration {s:?}: write seconds, or a number with s, m or h (90s, 65m, 1h30m)");
    let (mut total, mut num) = (0u64, String::new());
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    }
    if total == 0 {
        return Err(format!("duration {s:?}: must be at least one second"));
    }
    Ok(Duration::from_secs(total))
}

fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.01..=1000.0).contains(&r) => Ok(r),
        _ => Err(format!("rate {s:?}: hand-offs per second between 0.01 and 1000")),
    }
}

/// One sample of both processes.
#[derive(Serialize, Clone)]
struct Sample {
    seconds: f64,
    handoffs: u64,
    frames: u64,
    fds: u64,
    peer_fds: u64,
    rss_kib: u64,
    peer_rss_kib: u64,
    /// `VkPhysicalDeviceMemoryBudgetPropertiesEXT::heapUsage`, summed over heaps (producer).
    device_bytes: Option<u64>,
}

/// Open descriptors of a process.
fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0)
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Device memory in use by this process, where the device has VK_EXT_memory_budget.
fn device_bytes(ctx: &Context) -> Option<u64> {
    if !ctx.has_extension(ash_budget()) {
        return None;
    }
    let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
    let mut props = vk::PhysicalDeviceMemoryProperties2::default().push_next(&mut budget);
    // SAFETY: a live physical device; the extension is enabled on the context's device.
    unsafe { ctx.instance().get_physical_device_memory_properties2(ctx.physical_device(), &mut props) };
    let heaps = props.memory_properties.memory_heap_count as usize;
    Some(budget.heap_usage[..heaps.min(vk::MAX_MEMORY_HEAPS)].iter().sum())
}

fn ash_budget() -> &'static std::ffi::CStr {
    extmem::ash::ext::memory_budget::NAME
}

/// Least-squares slope of `y` over `x`, per hour of `x` seconds.
fn slope_per_hour(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return 0.0;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    sxy / sxx * 3600.0
}

/// One hand-off: a new buffer (alternately opaque fd and host memory where the device has it),
/// exported, sent, imported by the peer, which releases the previous one. Another kind of
/// hand-off (pooled, say) is another function of this shape, picked in `soak` by an option.
fn hand_off(ctx: &Arc<Context>, peer: &Peer, bytes: u64, handle: HandleType, n: u64) -> extmem::Result<()> {
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let shared = SharedMemory::new_buffer(ctx, BufferDesc { size: bytes, usage }, handle, Dedicated::Always)?;
    shared.write(&pattern::fill(bytes as usize, 0), Handoff::host())?;
    let (desc, fd) = shared.export()?;
    peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    drop(fd);
    for what in ["imported", "released"] {
        match peer.channel.recv_plain("Verdict")? {
            Message::Verdict { ok: true, .. } => {}
            other => return Err(extmem::Error::Protocol(format!("hand-off {n}: expected {what}, got {other:?}"))),
        }
    }
    Ok(())
}

fn soak(args: &SoakArgs) -> Result<ExitCode> {
    let duration = args.duration;
    let path = if args.nv { PathKind::Nv } else { PathKind::Khr };
    let ctx = Context::new(&ContextOptions::default().path(path).app_name("extmem soak"))?;
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    let peer = Peer::spawn(false, monotonic_ns(), &["--probe"])?;
    let (me, them) = (std::process::id(), peer.child.id());
    let handles: Vec<HandleType> = [HandleType::OpaqueFd, HandleType::HostAllocation]
        .into_iter()
        .filter(|h| ctx.supports_handle_type(*h))
        .collect();
    let pause = Duration::from_secs_f64(1.0 / args.rate);
    let every = Duration::from_secs(args.sample);
    eprintln!(
        "extmem bench soak {}s on {}: {} hand-off(s)/s of {} bytes ({}), {} frame(s) each, a sample every {}s",
        duration.as_secs(),
        ctx.device_name(),
        args.rate,
        args.bytes,
        handles.iter().map(|h| h.name()).collect::<Vec<_>>().join(" / "),
        args.frames,
        args.sample
    );
    let start = Instant::now();
    let (mut handoffs, mut frames, mut samples) = (0u64, 0u64, Vec::new());
    let mut next_sample = start;
    let mut next_handoff = start;
    loop {
        let now = Instant::now();
        if now >= next_sample {
            samples.push(Sample {
                seconds: start.elapsed().as_secs_f64(),
                handoffs,
                frames,
                fds: fd_count(me),
                peer_fds: fd_count(them),
                rss_kib: rss_kib(me),
                peer_rss_kib: rss_kib(them),
                device_bytes: device_bytes(&ctx),
            });
            if let Some(out) = &args.out {
                write_outputs(out, &ctx, args, duration, &samples)?;
            }
            next_sample += every;
        }
        if now.duration_since(start) >= duration {
            break;
        }
        if now >= next_handoff {
            hand_off(&ctx, &peer, args.bytes, handles[(handoffs % handles.len() as u64) as usize], handoffs)?;
            handoffs += 1;
            let protocol = FrameProtocol::new(&peer.channel, Role::Producer);
            for _ in 0..args.frames {
                protocol.signal_ready(Frame::new(frames))?;
                protocol.wait_done(Frame::new(frames))?;
                frames += 1;
            }
            next_handoff += pause;
        }
        let wake = next_sample.min(next_handoff).min(start + duration);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let ok = peer.finish()?;
    let summary = summary(&ctx, args, duration, &samples);
    match &args.out {
        Some(out) => write_outputs(out, &ctx, args, duration, &samples)?,
        None => println!("{summary}"),
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn write_outputs(
    out: &Path,
    ctx: &Context,
    args: &SoakArgs,
    duration: Duration,
    samples: &[Sample],
) -> extmem::Result<()> {
    let json = serde_json::json!({
        "device": ctx.device_name(),
        "duration_s": duration.as_secs(),
        "rate_per_s": args.rate,
        "frames_per_handoff": args.frames,
        "bytes": args.bytes,
        "slopes_per_hour": slopes(samples),
        "samples": samples,
    });
    let io = |e: std::io::Error| extmem::Error::Io { context: format!("writing {}", out.display()), source: e };
    std::fs::write(out, crate::support::json::to_string(json)).map_err(io)?;
    std::fs::write(out.with_extension("md"), summary(ctx, args, duration, samples)).map_err(io)
}

/// Slopes per hour of each series, over the samples after the first tenth of the run (warm-up:
/// caches, staging buffers and the first imports settle).
fn slopes(samples: &[Sample]) -> serde_json::Value {
    let skip = samples.len() / 10;
    let tail = &samples[skip..];
    let series = |f: fn(&Sample) -> Option<f64>| {
        let pts: Vec<(f64, f64)> = tail.iter().filter_map(|s| f(s).map(|y| (s.seconds, y))).collect();
        slope_per_hour(&pts)
    };
    serde_json::json!({
        "fds": series(|s| Some(s.fds as f64)),
        "peer_fds": series(|s| Some(s.peer_fds as f64)),
        "rss_kib": series(|s| Some(s.rss_kib as f64)),
        "peer_rss_kib": series(|s| Some(s.peer_rss_kib as f64)),
        "device_bytes": series(|s| s.device_bytes.map(|b| b as f64)),
    })
}

/// A series of the samples.
type Field = fn(&Sample) -> Option<u64>;

fn summary(ctx: &Context, args: &SoakArgs, duration: Duration, samples: &[Sample]) -> String {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else { return String::new() };
    let slopes = slopes(samples);
    let mut md = format!(
        "# Soak: `extmem bench soak {}s --rate {} --frames {} --bytes {}`\n\n\
         Device: {}. {:.0} s sampled of {} s, {} hand-offs (a new buffer each, alternately opaque fd and \
         host memory), {} synchronised frames, {} samples. Slopes are least-squares fits over the samples \
         after the first tenth of the run (warm-up).\n\n\
         | series | first | last | min | max | slope per hour |\n|---|---|---|---|---|---|\n",
        duration.as_secs(),
        args.rate,
        args.frames,
        args.bytes,
        ctx.device_name(),
        last.seconds,
        duration.as_secs(),
        last.handoffs,
        last.frames,
        samples.len()
    );
    let rows: [(&str, Field); 5] = [
        ("fds", |s| Some(s.fds)),
        ("peer_fds", |s| Some(s.peer_fds)),
        ("rss_kib", |s| Some(s.rss_kib)),
        ("peer_rss_kib", |s| Some(s.peer_rss_kib)),
        ("device_bytes", |s| s.device_bytes),
    ];
    for (name, f) in rows {
        let vals: Vec<u64> = samples.iter().filter_map(f).collect();
        let (Some(min), Some(max)) = (vals.iter().min(), vals.iter().max()) else {
            md.push_str(&format!("| {name} | n/a (no VK_EXT_memory_budget) | | | | |\n"));
            continue;
        };
        md.push_str(&format!(
            "| {name} | {} | {} | {min} | {max} | {:.2} |\n",
            f(first).unwrap_or(0),
            f(last).unwrap_or(0),
            slopes[name].as_f64().unwrap_or(0.0)
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_are_named() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("65m"), Ok(Duration::from_secs(3900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        for bad in ["", "0", "1d", "h", "99999999999999999999h", "-5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slope_of_a_line_is_its_gradient_per_hour() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64 * 60.0, 5.0 + i as f64)).collect();
        assert!((slope_per_hour(&pts) - 60.0).abs() < 1e-9);
        assert_eq!(slope_per_hour(&[(0.0, 3.0), (10.0, 3.0)]), 0.0);
        assert_eq!(slope_per_hour(&[(1.0, 3.0)]), 0.0);
    }
}
