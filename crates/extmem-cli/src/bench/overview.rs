//! `extmem bench` with no mode: `first-handoff` and `steady` in one run, with one consumer
//! process, and one report (the old `extmem bench`).

use crate::bench::common::start;
use crate::bench::legacy::Legacy;
use crate::bench::{first_handoff, steady};
use crate::support::error::Result;
use std::process::ExitCode;

/// Runs both with the flags of the old command line.
pub fn run(a: &Legacy) -> Result<ExitCode> {
    crate::support::child::set_timeouts(a.timeouts);
    if a.png.is_some() {
        crate::support::plot::check_font()?;
    }
    let sizes = a.sizes.clone().unwrap_or_else(|| vec![4 << 10, 64 << 10, 1 << 20, 16 << 20, 256 << 20, 1 << 30]);
    let (ctx, peer) = start(a.nv, a.queue.first().copied().unwrap_or_default())?;
    let handoffs = first_handoff::measure(&ctx, &peer, &sizes, a.repeat, a.json)?;
    let steady = steady::measure(&ctx, &peer, a.frames, a.json)?;
    let ok = peer.finish()?;
    if let Some(png) = &a.png {
        first_handoff::plot(png, &ctx, &sizes, &handoffs)?;
    }
    if a.json {
        crate::support::json::print(serde_json::json!({
            "device": ctx.device_name(),
            "path": if a.nv { "nv" } else { "khr" },
            "repeat": a.repeat,
            "handoff": handoffs,
            "steady_state": steady,
        }));
    } else {
        first_handoff::print(&ctx, &handoffs);
        println!();
        steady::print(&steady);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
