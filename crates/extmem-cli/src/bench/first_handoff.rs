//! `extmem bench first-handoff`: the first hand-off by size, export + send over the socket +
//! import in the other process (acknowledged), against copying the same bytes through shared
//! host memory (read back from the GPU into a memfd, sent, mapped and uploaded by the other
//! process). One untimed hand-off of each kind first: the first of a run paid for code and
//! driver paths the others found ready, and landed in the first size's figures.

use crate::bench::common::{buffer, copy, start, zero_copy};
use crate::support::child::{Peer, Timeouts};
use crate::support::error::Result;
use crate::support::timing::median;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::{Context, QueueKind};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// First hand-off by size between two processes: zero-copy against copying through host memory.
#[derive(clap::Parser)]
#[command(name = "first-handoff")]
struct Args {
    /// Sizes in bytes (K, M, G suffixes allowed).
    #[arg(long, value_delimiter = ',', default_value = "4K,64K,1M,16M,256M,1G", value_parser = crate::support::parse::size)]
    sizes: Vec<u64>,
    /// Repetitions per size (the median is reported; at most 3 above 64 MiB).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeat: u64,
    /// Make the producer's memory exportable through VK_NV_external_memory (the layer).
    #[arg(long)]
    nv: bool,
    /// The Vulkan queue kind: general, compute or transfer.
    #[arg(long, default_value = "general")]
    queue: QueueKind,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw the latencies into this PNG file (its folder must exist).
    #[arg(long, value_name = "FILE", value_parser = crate::support::parse::output_file)]
    png: Option<PathBuf>,
    #[command(flatten)]
    timeouts: Timeouts,
}

/// One size's first hand-off, zero-copy and copying (medians).
#[derive(Serialize)]
pub struct HandOff {
    bytes: u64,
    zero_copy_ms: f64,
    copy_ms: f64,
    copy_over_zero_copy: f64,
}

/// The definition of `extmem bench first-handoff`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem bench first-handoff`.
pub fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let a = Args::from_arg_matches(matches)?;
    crate::support::child::set_timeouts(a.timeouts);
    if a.png.is_some() {
        crate::support::plot::check_font()?;
    }
    let (ctx, peer) = start(a.nv, a.queue)?;
    let handoffs = measure(&ctx, &peer, &a.sizes, a.repeat, a.json)?;
    let ok = peer.finish()?;
    if let Some(png) = &a.png {
        plot(png, &ctx, &a.sizes, &handoffs)?;
    }
    if a.json {
        crate::support::json::print(serde_json::json!({
            "device": ctx.device_name(),
            "path": if a.nv { "nv" } else { "khr" },
            "repeat": a.repeat,
            "handoff": handoffs,
        }));
    } else {
        print(&ctx, &handoffs);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Each size's first hand-off, after an untimed warm-up; progress on stderr unless `quiet`.
pub fn measure(ctx: &Arc<Context>, peer: &Peer, sizes: &[u64], repeat: u64, quiet: bool) -> Result<Vec<HandOff>> {
    let say = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    say(format!("extmem bench on {}, first hand-offs, medians of {repeat} runs", ctx.device_name()));
    let warm = buffer(ctx, 4096)?;
    zero_copy(peer, &warm)?;
    copy(peer, &warm)?;
    drop(warm);
    let mut handoffs = Vec::new();
    for &size in sizes {
        let shared = buffer(ctx, size)?;
        let repeat = if size > 64 << 20 { repeat.min(3) } else { repeat }.max(1);
        // Zero-copy first, then copying: a copy leaves gigabytes of pages to free in both
        // processes, which landed in the next zero-copy hand-off's timing when interleaved.
        let z = (0..repeat).map(|_| zero_copy(peer, &shared)).collect::<extmem::Result<Vec<f64>>>()?;
        let c = (0..repeat).map(|_| copy(peer, &shared)).collect::<extmem::Result<Vec<f64>>>()?;
        let (zero_copy_ms, copy_ms) = (median(z), median(c));
        say(format!("  {size:>10} bytes: zero-copy {zero_copy_ms:>9.3} ms, copy {copy_ms:>9.3} ms"));
        handoffs.push(HandOff { bytes: size, zero_copy_ms, copy_ms, copy_over_zero_copy: copy_ms / zero_copy_ms });
    }
    Ok(handoffs)
}

/// The latencies as a PNG plot.
pub fn plot(png: &Path, ctx: &Context, sizes: &[u64], handoffs: &[HandOff]) -> Result<()> {
    let series = [
        ("zero-copy (export + send + import)", handoffs.iter().map(|h| h.zero_copy_ms).collect()),
        ("copy through host memory", handoffs.iter().map(|h| h.copy_ms).collect()),
    ];
    let title = format!("First hand-off between two processes, {}", ctx.device_name());
    Ok(crate::support::plot::latency(png, &title, sizes, &series)?)
}

/// The table.
pub fn print(ctx: &Context, handoffs: &[HandOff]) {
    println!("First hand-off of one buffer ({}; median; zero-copy = export + send + import + ack)", ctx.device_name());
    println!("{:>12} {:>14} {:>16} {:>10}", "bytes", "zero-copy ms", "copy (host) ms", "copy/zc");
    for h in handoffs {
        println!("{:>12} {:>14.3} {:>16.3} {:>9.1}x", h.bytes, h.zero_copy_ms, h.copy_ms, h.copy_over_zero_copy);
    }
}
