//! `extmem bench pool`: pooled hand-offs beside today's, in one run, for a Vulkan consumer
//! and a CUDA consumer (where CUDA and an NVIDIA GPU are present).
//!
//! - Today's hand-off, the span a raw driver probe measures: export, send, import into a
//!   buffer in the other process (dedicated), free the previous import there, reply; with each
//!   step timed (both processes read `CLOCK_MONOTONIC`, so transit and reply are timed too).
//! - A pooled hand-off, on a warm pool with room: from the producer's sub-allocation to the
//!   producer receiving the consumer's acknowledgement that it holds a bound resource (Vulkan)
//!   or a device pointer (CUDA). A block's creation and the first hand-off into it (which sends
//!   the block and has the consumer import it) are reported apart.
//! - For CUDA also CUDA IPC of a fresh `cuMemAlloc` allocation and of one allocation re-opened
//!   (which the driver serves from a cache).

mod cuda;
mod measure;

use crate::bench::pool::measure::{buffer_desc, pooled, today, Row, POOLED_REPEAT};
use crate::support::child::{Peer, Timeouts};
use crate::support::error::Result;
use crate::support::timing::{median, monotonic_ns};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::pool::{Pool, PoolLink, PoolOptions, PoolStats};
use extmem::{Context, ContextOptions, Dedicated, HandleType, PathKind, SharedMemory};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Pooled hand-offs (extmem::pool) beside today's, for a Vulkan and a CUDA consumer (CUDA
/// where present), with today's steps timed.
#[derive(clap::Parser)]
#[command(name = "pool")]
struct Args {
    /// Sizes in bytes (K, M, G suffixes) [default: 4K to 4G, up to the device's
    /// maxMemoryAllocationSize].
    #[arg(long, value_delimiter = ',', value_parser = crate::support::parse::size)]
    sizes: Option<Vec<u64>>,
    /// Repetitions of today's hand-off per size (the median is reported; at most 3 above 64 MiB).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeat: u64,
    /// Make the producer's memory exportable through VK_NV_external_memory (the layer).
    #[arg(long)]
    nv: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also draw the hand-off latencies into this PNG file (its folder must exist).
    #[arg(long, value_name = "FILE", value_parser = crate::support::parse::output_file)]
    png: Option<PathBuf>,
    /// Pooled hand-offs to this PyTorch consumer script too
    /// (python/examples/torch_pool_consumer.py).
    #[arg(long, value_name = "SCRIPT")]
    torch: Option<PathBuf>,
    #[command(flatten)]
    timeouts: Timeouts,
}

/// The definition of `extmem bench pool`.
pub fn cli() -> Command {
    Args::command()
}

fn default_sizes(max: u64) -> Vec<u64> {
    let mut sizes: Vec<u64> = [4u64 << 10, 64 << 10, 1 << 20, 16 << 20, 256 << 20, 1 << 30, 4 << 30]
        .into_iter()
        .filter(|&s| s <= max)
        .collect();
    if max < 4 << 30 && sizes.last() != Some(&max) {
        sizes.push(max);
    }
    sizes
}

/// Runs `extmem bench pool`.
pub fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let o = Args::from_arg_matches(matches)?;
    crate::support::child::set_timeouts(o.timeouts);
    if o.png.is_some() {
        crate::support::plot::check_font()?;
    }
    let path = if o.nv { PathKind::Nv } else { PathKind::Khr };
    let ctx = Context::new(&ContextOptions::default().path(path).app_name("extmem bench pool"))?;
    let pool = Pool::new(&ctx, PoolOptions::default())?;
    let sizes = o.sizes.clone().unwrap_or_else(|| default_sizes(pool.max_allocation_size()));
    let say = |s: String| {
        if !o.json {
            eprintln!("{s}");
        }
    };
    say(format!(
        "extmem bench pool on {} ({path:?} path), maxMemoryAllocationSize {}, blocks of {} bytes",
        ctx.device_name(),
        pool.max_allocation_size(),
        PoolOptions::default().block_size
    ));
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    let mut rows: Vec<Row> = sizes.iter().map(|&bytes| Row { bytes, ..Row::default() }).collect();
    let peer = Peer::spawn(false, monotonic_ns(), &["--pool"])?;
    // Warm-up, untimed: the first hand-off of a run pays for code and driver paths the next
    // ones find ready, which landed in the first size's figures.
    let warm = SharedMemory::new_buffer(&ctx, buffer_desc(4096), HandleType::OpaqueFd, Dedicated::Always)?;
    today(&peer, &warm)?;
    drop(warm);
    {
        let mut link = PoolLink::new(&pool, &peer.channel);
        for row in rows.iter_mut() {
            let size = row.bytes;
            let shared = SharedMemory::new_buffer(&ctx, buffer_desc(size), HandleType::OpaqueFd, Dedicated::Always)?;
            let repeat = if size > 64 << 20 { o.repeat.min(3) } else { o.repeat }.max(1) as usize;
            let mut spans = Vec::new();
            let mut steps: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
            for _ in 0..repeat {
                let (ms, s) = today(&peer, &shared)?;
                spans.push(ms);
                s.into_iter().for_each(|(k, v)| steps.entry(k).or_default().push(v));
            }
            row.vulkan_today_ms = median(spans);
            row.vulkan_today_steps_us = steps.into_iter().map(|(k, v)| (k, median(v))).collect();
            drop(shared);
            let (mut spans, mut imports) = (Vec::new(), Vec::new());
            for _ in 0..repeat {
                let fresh = SharedMemory::new_buffer(&ctx, buffer_desc(size), HandleType::OpaqueFd, Dedicated::Always)?;
                let (ms, s) = today(&peer, &fresh)?;
                spans.push(ms);
                imports.push(s.iter().find(|(k, _)| *k == "import_allocate").map_or(0.0, |s| s.1) / 1e3);
            }
            row.vulkan_today_fresh_allocation_ms = median(spans);
            row.vulkan_today_fresh_import_allocate_ms = median(imports);
            let (created, first, warm) = pooled(&pool, &mut link, size)?;
            (row.vulkan_pool_block_created_ms, row.vulkan_pool_first_hand_off_ms, row.vulkan_pool_us) =
                (created, first, warm);
            say(format!(
                "  {size:>11} bytes Vulkan -> Vulkan: today {:.3} ms (fresh allocation {:.3} ms), pooled {warm:.1} us \
                 (first into a block {first:.3} ms)",
                row.vulkan_today_ms, row.vulkan_today_fresh_allocation_ms
            ));
        }
    }
    let vulkan_ok = peer.finish()?;
    // Which memory type today's allocations use (import cost differs by type on NVIDIA).
    let probe = SharedMemory::new_buffer(&ctx, buffer_desc(4096), HandleType::OpaqueFd, Dedicated::Always)?;
    let index = probe.descriptor().memory_type_index;
    let flags = ctx.memory_properties().memory_types[index as usize].property_flags;
    let memory_type = format!("{index} ({flags:?})");
    drop(probe);
    let stats = pool.stats();
    drop(pool);
    let cuda = cuda::run(&ctx, &mut rows, o.repeat as usize)?;
    if let Some(script) = &o.torch {
        cuda::torch(&ctx, &mut rows, script)?;
    }
    if let Some(png) = &o.png {
        plot(png, &ctx, &sizes, &rows)?;
    }
    report(&o, &ctx, &rows, &stats, &cuda, &memory_type);
    Ok(if vulkan_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn plot(png: &std::path::Path, ctx: &Arc<Context>, sizes: &[u64], rows: &[Row]) -> extmem::Result<()> {
    let mut series = vec![
        (
            "Vulkan -> Vulkan today (export + send + import + free previous)",
            rows.iter().map(|r| r.vulkan_today_ms).collect(),
        ),
        ("Vulkan -> Vulkan pooled", rows.iter().map(|r| r.vulkan_pool_us / 1e3).collect::<Vec<f64>>()),
    ];
    if rows.iter().all(|r| r.cuda_pool_us.is_some()) {
        series
            .push(("Vulkan -> CUDA today (dedicated)", rows.iter().map(|r| r.cuda_today_ms.unwrap_or(0.0)).collect()));
        series.push(("Vulkan -> CUDA pooled", rows.iter().map(|r| r.cuda_pool_us.unwrap_or(0.0) / 1e3).collect()));
        series.push(("CUDA IPC, fresh allocation", rows.iter().map(|r| r.cuda_ipc_fresh_ms.unwrap_or(0.0)).collect()));
    }
    crate::support::plot::latency(png, &format!("Hand-off, today and pooled, {}", ctx.device_name()), sizes, &series)
}

fn report(
    o: &Args,
    ctx: &Arc<Context>,
    rows: &[Row],
    stats: &PoolStats,
    cuda: &std::result::Result<(), String>,
    memory_type: &str,
) {
    if o.json {
        let out = serde_json::json!({
            "device": ctx.device_name(),
            "path": if o.nv { "nv" } else { "khr" },
            "repeat_today": o.repeat,
            "repeat_pooled": POOLED_REPEAT,
            "block_size": PoolOptions::default().block_size,
            "today_memory_type": memory_type,
            "cuda": match cuda { Ok(()) => "measured".to_string(), Err(why) => format!("skipped: {why}") },
            "sizes": rows,
            "pool_stats_after_vulkan": stats,
        });
        crate::support::json::print(out);
        return;
    }
    println!("Hand-off, today against pooled ({}; medians)", ctx.device_name());
    println!(
        "{:>12} {:>14} {:>12} {:>15} {:>12} {:>14} {:>15} {:>14}",
        "bytes",
        "V->V today ms",
        "(fresh) ms",
        "V->V pooled us",
        "CUDA today ms",
        "CUDA pooled us",
        "IPC fresh ms",
        "IPC cached ms"
    );
    let opt = |v: Option<f64>, p: usize| v.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
    for r in rows {
        println!(
            "{:>12} {:>14.3} {:>12.3} {:>15.1} {:>12} {:>14} {:>15} {:>14}",
            r.bytes,
            r.vulkan_today_ms,
            r.vulkan_today_fresh_allocation_ms,
            r.vulkan_pool_us,
            opt(r.cuda_today_ms, 3),
            opt(r.cuda_pool_us, 1),
            opt(r.cuda_ipc_fresh_ms, 3),
            opt(r.cuda_ipc_cached_ms, 3)
        );
    }
    println!("\nToday's Vulkan -> Vulkan hand-off (memory type {memory_type}), steps (us, median)");
    for r in rows {
        let steps: Vec<String> = r.vulkan_today_steps_us.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
        println!("{:>12}: {}", r.bytes, steps.join(", "));
    }
    if let Err(why) = cuda {
        println!("\nVulkan -> CUDA: skipped ({why})");
    }
    println!(
        "\nPool after the Vulkan run: {} blocks, {} bytes kept, {} in use, fragmentation {:.2}",
        stats.blocks, stats.bytes_kept, stats.bytes_in_use, stats.fragmentation
    );
}
