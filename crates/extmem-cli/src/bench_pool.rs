//! `extmem bench --pool`: pooled hand-offs beside today's, in one run, for a Vulkan consumer
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

use crate::child::Peer;
use crate::timing::{median, monotonic_ns, ms_since, us_since};
use extmem::pool::{Pool, PoolLink, PoolOptions, PoolStats};
use extmem::transport::Message;
use extmem::{vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, PathKind, SharedMemory};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// What `bench --pool` takes from the command line.
pub struct Options {
    pub sizes: Option<Vec<u64>>,
    pub repeat: u64,
    pub nv: bool,
    pub json: bool,
    pub png: Option<std::path::PathBuf>,
    pub torch: Option<std::path::PathBuf>,
}

/// Pooled hand-offs timed per size (after one untimed warm-up).
const POOLED_REPEAT: usize = 51;

/// One size: today's hand-off and the pooled one, for both consumers.
#[derive(Serialize, Default)]
pub(crate) struct Row {
    pub(crate) bytes: u64,
    pub(crate) vulkan_today_ms: f64,
    /// Median of each step of today's hand-off (µs): export; send (the sendmsg call) and
    /// send_to_receipt (from export done to the consumer's recv returning: overlaps send);
    /// the consumer's checks, create_resource, import_allocate (vkAllocateMemory import),
    /// bind, free_previous; ack (reply to receipt); and close_fd_after (outside the span).
    pub(crate) vulkan_today_steps_us: BTreeMap<&'static str, f64>,
    /// Today's span with a new producer allocation each time (the consumer imports memory it
    /// never imported before), and that import's vkAllocateMemory alone.
    pub(crate) vulkan_today_fresh_allocation_ms: f64,
    pub(crate) vulkan_today_fresh_import_allocate_ms: f64,
    pub(crate) vulkan_pool_us: f64,
    pub(crate) vulkan_pool_block_created_ms: Option<f64>,
    pub(crate) vulkan_pool_first_hand_off_ms: f64,
    pub(crate) cuda_today_ms: Option<f64>,
    pub(crate) cuda_today_import_ms: Option<f64>,
    pub(crate) cuda_pool_us: Option<f64>,
    pub(crate) cuda_pool_block_created_ms: Option<f64>,
    pub(crate) cuda_pool_first_hand_off_ms: Option<f64>,
    pub(crate) cuda_ipc_fresh_ms: Option<f64>,
    pub(crate) cuda_ipc_cached_ms: Option<f64>,
    /// Pooled hand-off to a PyTorch process (`--torch`): until it holds the device pointer.
    pub(crate) torch_pool_us: Option<f64>,
    pub(crate) torch_pool_first_hand_off_ms: Option<f64>,
}

pub(crate) fn buffer_desc(size: u64) -> BufferDesc {
    BufferDesc::new(size, vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
}

fn field(detail: &str, key: &str) -> extmem::Result<u64> {
    detail
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .ok_or_else(|| extmem::Error::Protocol(format!("the consumer's reply has no {key}: {detail:?}")))
}

/// Today's hand-off of `shared`, step by step (µs), and its whole span (ms).
pub(crate) fn today(peer: &Peer, shared: &SharedMemory) -> extmem::Result<(f64, Vec<(&'static str, f64)>)> {
    let t0 = monotonic_ns();
    let (desc, fd) = shared.export()?;
    let t1 = monotonic_ns();
    peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    let t2 = monotonic_ns();
    let detail = match peer.channel.recv_plain("Verdict")? {
        Message::Verdict { ok: true, detail } => detail,
        other => return Err(extmem::Error::Protocol(format!("expected a verdict, got {other:?}"))),
    };
    let t3 = monotonic_ns();
    drop(fd);
    let t4 = monotonic_ns();
    let us = |ns: u64| ns as f64 / 1e3;
    let (recv_at, sent_at) = (field(&detail, "recv_at")?, field(&detail, "sent_at")?);
    let steps = vec![
        ("export", us(t1 - t0)),
        ("send", us(t2 - t1)),
        ("send_to_receipt", us(recv_at.saturating_sub(t1))),
        ("checks", us(field(&detail, "checks")?)),
        ("create_resource", us(field(&detail, "create_resource")?)),
        ("import_allocate", us(field(&detail, "allocate")?)),
        ("bind", us(field(&detail, "bind")?)),
        ("free_previous", us(field(&detail, "free_previous")?)),
        ("ack", us(t3.saturating_sub(sent_at))),
        ("close_fd_after", us(t4 - t3)),
    ];
    Ok(((t3 - t0) as f64 / 1e6, steps))
}

/// Pooled hand-offs of `size` bytes: block creation (when one is made), the first hand-off
/// into a block (with its import), and the median of warm hand-offs (µs).
pub(crate) fn pooled(pool: &Pool, link: &mut PoolLink<'_>, size: u64) -> extmem::Result<(Option<f64>, f64, f64)> {
    let t = Instant::now();
    let created = pool.reserve(size)?.map(|_| ms_since(t));
    let mut first = None;
    let mut times = Vec::new();
    for _ in 0..=POOLED_REPEAT {
        let t = Instant::now();
        let p = pool.buffer(buffer_desc(size))?;
        let new_block = !link.has_block(p.handle().block);
        link.share(&p)?;
        link.wait_held(&p.handle())?;
        let us = us_since(t);
        match first {
            None => first = Some(us / 1e3),
            Some(_) if new_block => return Err(extmem::Error::Pool("a warm hand-off needed a new block".into())),
            Some(_) => times.push(us),
        }
        let h = p.handle();
        drop(p);
        link.wait_released(&h)?;
    }
    Ok((created, first.unwrap_or(0.0), median(times)))
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

pub fn main(o: Options) -> extmem::Result<ExitCode> {
    let path = if o.nv { PathKind::Nv } else { PathKind::Khr };
    let ctx = Context::new(&ContextOptions::default().path(path).app_name("extmem bench --pool"))?;
    let pool = Pool::new(&ctx, PoolOptions::default())?;
    let sizes = o.sizes.clone().unwrap_or_else(|| default_sizes(pool.max_allocation_size()));
    let say = |s: String| {
        if !o.json {
            eprintln!("{s}");
        }
    };
    say(format!(
        "extmem bench --pool on {} ({path:?} path), maxMemoryAllocationSize {}, blocks of {} bytes",
        ctx.device_name(),
        pool.max_allocation_size(),
        PoolOptions::default().block_size
    ));
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    let mut rows: Vec<Row> = sizes.iter().map(|&bytes| Row { bytes, ..Row::default() }).collect();
    let peer = Peer::spawn(false, monotonic_ns(), &["--pool"])?;
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
    let cuda = crate::bench_pool_cuda::run(&ctx, &mut rows, o.repeat as usize)?;
    if let Some(script) = &o.torch {
        crate::bench_pool_cuda::torch(&ctx, &mut rows, script)?;
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
    crate::plot::latency(png, &format!("Hand-off, today and pooled, {}", ctx.device_name()), sizes, &series)
}

fn report(
    o: &Options,
    ctx: &Arc<Context>,
    rows: &[Row],
    stats: &PoolStats,
    cuda: &Result<(), String>,
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
        println!("{}", serde_json::to_string_pretty(&out).expect("serialisable"));
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
