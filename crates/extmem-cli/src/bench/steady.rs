//! `extmem bench steady`: the steady state with reuse, frames per second of a hand-off loop
//! at 1080p and 4K RGBA8, where each frame is synchronised (FrameReady / FrameDone, ownership
//! released and acquired) and probed by the consumer, against copying every frame through
//! host memory.

use crate::bench::common::{buffer, copy, start, zero_copy};
use crate::support::child::{Peer, Timeouts};
use crate::support::error::Result;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::{Context, QueueKind};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Steady state with reuse: frames per second, zero-copy against copying every frame.
#[derive(clap::Parser)]
#[command(name = "steady")]
struct Args {
    /// Frames per run (copying runs at most 10).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// Make the producer's memory exportable through VK_NV_external_memory (the layer).
    #[arg(long)]
    nv: bool,
    /// The Vulkan queue kind: general, compute or transfer.
    #[arg(long, default_value = "general")]
    queue: QueueKind,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    timeouts: Timeouts,
}

/// One frame size's rates.
#[derive(Serialize)]
pub struct Steady {
    frame: &'static str,
    bytes: u64,
    zero_copy_fps: f64,
    copy_fps: f64,
    zero_copy_over_copy: f64,
}

/// The definition of `extmem bench steady`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem bench steady`.
pub fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let a = Args::from_arg_matches(matches)?;
    crate::support::child::set_timeouts(a.timeouts);
    let (ctx, peer) = start(a.nv, a.queue)?;
    let steady = measure(&ctx, &peer, a.frames, a.json)?;
    let ok = peer.finish()?;
    if a.json {
        crate::support::json::print(serde_json::json!({
            "device": ctx.device_name(),
            "path": if a.nv { "nv" } else { "khr" },
            "frames": a.frames,
            "steady_state": steady,
        }));
    } else {
        print(&steady);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Both frame sizes, `frames` each; progress on stderr unless `quiet`.
pub fn measure(ctx: &Arc<Context>, peer: &Peer, frames: u64, quiet: bool) -> Result<Vec<Steady>> {
    let mut steady = Vec::new();
    for (frame, w, h) in [("1080p RGBA8", 1920u64, 1080u64), ("4K RGBA8", 3840, 2160)] {
        let bytes = w * h * 4;
        let shared = buffer(ctx, bytes)?;
        zero_copy(peer, &shared)?; // the consumer imports once, then reuses it
        let t = Instant::now();
        for n in 0..frames {
            let protocol = FrameProtocol::new(&peer.channel, Role::Producer);
            protocol.signal_ready(Frame::new(n))?;
            protocol.wait_done(Frame::new(n))?;
        }
        let zero_copy_fps = frames as f64 / t.elapsed().as_secs_f64();
        let copy_frames = frames.clamp(1, 10);
        let t = Instant::now();
        for _ in 0..copy_frames {
            copy(peer, &shared)?;
        }
        let copy_fps = copy_frames as f64 / t.elapsed().as_secs_f64();
        if !quiet {
            eprintln!("  {frame}: zero-copy {zero_copy_fps:.1} frames/s, copy {copy_fps:.1} frames/s");
        }
        steady.push(Steady { frame, bytes, zero_copy_fps, copy_fps, zero_copy_over_copy: zero_copy_fps / copy_fps });
    }
    Ok(steady)
}

/// The table.
pub fn print(steady: &[Steady]) {
    println!("Steady state with reuse (per frame: sync + consumer probe, or a full copy via host)");
    println!("{:>12} {:>16} {:>12} {:>10}", "frame", "zero-copy fps", "copy fps", "zc/copy");
    for s in steady {
        println!("{:>12} {:>16.1} {:>12.1} {:>9.1}x", s.frame, s.zero_copy_fps, s.copy_fps, s.zero_copy_over_copy);
    }
}
