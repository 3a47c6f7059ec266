//! `extmem bench`: what zero-copy sharing saves, measured side by side in one run.
//!
//! - First hand-off by size: export + send over the socket + import in the other process
//!   (acknowledged), against copying the same bytes through shared host memory (read back
//!   from the GPU into a memfd, sent, mapped and uploaded by the other process).
//! - Steady state with reuse: frames per second of a hand-off loop at 1080p and 4K RGBA8, where
//!   each frame is synchronised (FrameReady / FrameDone, ownership released and acquired) and
//!   probed by the consumer, against copying every frame through host memory.

use crate::child::Peer;
use crate::timing::{median, monotonic_ns, ms_since};
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::transport::Message;
use extmem::Handoff;
use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, PathKind, QueueKind, SharedMemory,
};
use serde::Serialize;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `extmem bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Sizes for the hand-off latency, in bytes (K, M, G suffixes allowed).
    #[arg(long, value_delimiter = ',', default_value = "4K,64K,1M,16M,256M,1G")]
    sizes: Vec<String>,
    /// Repetitions per size (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeat: u64,
    /// Frames per steady-state run.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// Make the producer's memory exportable through VK_NV_external_memory (the layer).
    #[arg(long)]
    nv: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Vulkan → CUDA instead (NVIDIA GPU and CUDA driver needed): first hand-off against CUDA
    /// IPC and pinned staging, and the steady-state frame loop with semaphores, the counter
    /// fast path and copies. Default sizes then: 4M,64M,1G,4G.
    #[arg(long)]
    cuda: bool,
    /// With --cuda, on a host with two GPUs: a frame of GPU 0 for a consumer on GPU 1 by CUDA
    /// peer copy, by staging through host memory and by Vulkan through host memory, beside
    /// the same-GPU zero-copy path. Default sizes then: 1080p and 4K RGBA8 frames, 256M.
    #[arg(long, requires = "cuda")]
    peer: bool,
    /// Vulkan queue kinds: general, compute, transfer (a transfer-only family runs on the copy
    /// engines). With --cuda the steady state and the crossings are measured on each; without,
    /// the first one is used.
    #[arg(long, value_delimiter = ',', default_value = "general,transfer")]
    queue: Vec<QueueKind>,
    /// Pooled hand-offs (extmem::pool) beside today's, for a Vulkan and a CUDA consumer (CUDA
    /// where present), with today's steps timed. Default sizes then: 4K to 4G, up to the
    /// device's maxMemoryAllocationSize.
    #[arg(long)]
    pool: bool,
    /// With --pool: pooled hand-offs to this PyTorch consumer script too
    /// (python/examples/torch_pool_consumer.py).
    #[arg(long, value_name = "SCRIPT", requires = "pool")]
    torch: Option<std::path::PathBuf>,
    /// Also draw the hand-off latencies into this PNG file.
    #[arg(long, value_name = "FILE")]
    png: Option<std::path::PathBuf>,
    #[command(flatten)]
    soak: crate::soak::SoakArgs,
    #[command(flatten)]
    timeouts: crate::child::Timeouts,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let bad = || format!("size {s:?} is not a number of 1 or more bytes with an optional K, M or G (at most 1T)");
    match num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) if (1..=1 << 40).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

#[derive(Serialize)]
struct HandOff {
    bytes: u64,
    zero_copy_ms: f64,
    copy_ms: f64,
    copy_over_zero_copy: f64,
}

#[derive(Serialize)]
struct Steady {
    frame: &'static str,
    bytes: u64,
    zero_copy_fps: f64,
    copy_fps: f64,
    zero_copy_over_copy: f64,
}

fn buffer(ctx: &std::sync::Arc<Context>, size: u64) -> extmem::Result<SharedMemory> {
    let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    let b = SharedMemory::new_buffer(ctx, desc, HandleType::OpaqueFd, Dedicated::Always)?;
    b.write(&pattern::fill(size as usize, 0), Handoff::host())?;
    Ok(b)
}

fn expect_verdict(peer: &Peer) -> extmem::Result<()> {
    match peer.channel.recv_plain("Verdict")? {
        Message::Verdict { ok: true, .. } => Ok(()),
        other => Err(extmem::Error::Protocol(format!("expected a verdict, got {other:?}"))),
    }
}

/// Zero-copy: export, send, the peer imports and acknowledges.
fn zero_copy(peer: &Peer, shared: &SharedMemory) -> extmem::Result<f64> {
    let t = Instant::now();
    let (desc, fd) = shared.export()?;
    peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    drop(fd);
    expect_verdict(peer)?;
    let ms = ms_since(t);
    expect_verdict(peer)?; // the peer released the previous import (not timed)
    Ok(ms)
}

/// Copying: read back into a memfd, send it, the peer maps it and uploads into its memory.
fn copy(peer: &Peer, shared: &SharedMemory) -> extmem::Result<f64> {
    let t = Instant::now();
    let data = shared.read(Handoff::host())?;
    let fd: OwnedFd = extmem::host::sealed_memfd("extmem-bench", data.len() as u64)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&data).map_err(|e| extmem::Error::Io { context: "writing the host copy".into(), source: e })?;
    peer.channel.send(&Message::HostBytes { len: data.len() as u64 }, &[file.as_fd()])?;
    drop(file);
    expect_verdict(peer)?;
    Ok(ms_since(t))
}

pub fn main(args: Args) -> extmem::Result<ExitCode> {
    crate::child::set_timeouts(args.timeouts);
    if let Some(duration) = args.soak.soak {
        return crate::soak::main(&args.soak, duration, args.nv);
    }
    let sizes: Vec<u64> =
        args.sizes.iter().map(|s| parse_size(s)).collect::<Result<_, _>>().map_err(extmem::Error::Unsupported)?;
    if args.png.is_some() {
        crate::plot::check_font()?;
    }
    if args.peer {
        let default_sizes = args.sizes.join(",") == "4K,64K,1M,16M,256M,1G";
        let sizes = if default_sizes { vec![1920 * 1080 * 4, 3840 * 2160 * 4, 256 << 20] } else { sizes };
        return crate::bench_peer::main(&sizes, args.frames.max(10), args.json);
    }
    if args.pool {
        let default_sizes = args.sizes.join(",") == "4K,64K,1M,16M,256M,1G";
        let (repeat, nv, json, png, torch) = (args.repeat, args.nv, args.json, args.png, args.torch);
        let sizes = (!default_sizes).then_some(sizes);
        return crate::bench_pool::main(crate::bench_pool::Options { sizes, repeat, nv, json, png, torch });
    }
    if args.cuda {
        return cuda_main(&args, sizes);
    }
    let path = if args.nv { PathKind::Nv } else { PathKind::Khr };
    let queue = args.queue.first().copied().unwrap_or_default();
    let ctx = Context::new(&ContextOptions::default().path(path).app_name("extmem bench").queue(queue))?;
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    let peer = Peer::spawn(false, monotonic_ns(), &["--probe"])?;
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    say(format!("extmem bench on {} ({:?} path), medians of {} runs", ctx.device_name(), path, args.repeat));

    let mut handoffs = Vec::new();
    for &size in &sizes {
        let shared = buffer(&ctx, size)?;
        let repeat = if size > 64 << 20 { args.repeat.min(3) } else { args.repeat }.max(1);
        // Zero-copy first, then copying: a copy leaves gigabytes of pages to free in both
        // processes, which landed in the next zero-copy hand-off's timing when interleaved.
        let z = (0..repeat).map(|_| zero_copy(&peer, &shared)).collect::<extmem::Result<Vec<f64>>>()?;
        let c = (0..repeat).map(|_| copy(&peer, &shared)).collect::<extmem::Result<Vec<f64>>>()?;
        let (zero_copy_ms, copy_ms) = (median(z), median(c));
        say(format!("  {:>10} bytes: zero-copy {zero_copy_ms:>9.3} ms, copy {copy_ms:>9.3} ms", size));
        handoffs.push(HandOff { bytes: size, zero_copy_ms, copy_ms, copy_over_zero_copy: copy_ms / zero_copy_ms });
    }

    let mut steady = Vec::new();
    for (frame, w, h) in [("1080p RGBA8", 1920u64, 1080u64), ("4K RGBA8", 3840, 2160)] {
        let bytes = w * h * 4;
        let shared = buffer(&ctx, bytes)?;
        zero_copy(&peer, &shared)?; // the consumer imports once, then reuses it
        let t = Instant::now();
        for n in 0..args.frames {
            let frames = FrameProtocol::new(&peer.channel, Role::Producer);
            frames.signal_ready(Frame::new(n))?;
            frames.wait_done(Frame::new(n))?;
        }
        let zero_copy_fps = args.frames as f64 / t.elapsed().as_secs_f64();
        let copy_frames = args.frames.clamp(1, 10);
        let t = Instant::now();
        for _ in 0..copy_frames {
            copy(&peer, &shared)?;
        }
        let copy_fps = copy_frames as f64 / t.elapsed().as_secs_f64();
        say(format!("  {frame}: zero-copy {zero_copy_fps:.1} frames/s, copy {copy_fps:.1} frames/s"));
        steady.push(Steady { frame, bytes, zero_copy_fps, copy_fps, zero_copy_over_copy: zero_copy_fps / copy_fps });
    }
    let consumer_ok = peer.finish()?;
    if let Some(png) = &args.png {
        let series = [
            ("zero-copy (export + send + import)", handoffs.iter().map(|h| h.zero_copy_ms).collect()),
            ("copy through host memory", handoffs.iter().map(|h| h.copy_ms).collect()),
        ];
        crate::plot::latency(
            png,
            &format!("First hand-off between two processes, {}", ctx.device_name()),
            &sizes,
            &series,
        )?;
    }

    if args.json {
        let out = serde_json::json!({
            "device": ctx.device_name(),
            "path": if args.nv { "nv" } else { "khr" },
            "repeat": args.repeat,
            "handoff": handoffs,
            "steady_state": steady,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("serialisable"));
    } else {
        println!(
            "First hand-off of one buffer ({}; median; zero-copy = export + send + import + ack)",
            ctx.device_name()
        );
        println!("{:>12} {:>14} {:>16} {:>10}", "bytes", "zero-copy ms", "copy (host) ms", "copy/zc");
        for h in &handoffs {
            println!("{:>12} {:>14.3} {:>16.3} {:>9.1}x", h.bytes, h.zero_copy_ms, h.copy_ms, h.copy_over_zero_copy);
        }
        println!("\nSteady state with reuse (per frame: sync + consumer probe, or a full copy via host)");
        println!("{:>12} {:>16} {:>12} {:>10}", "frame", "zero-copy fps", "copy fps", "zc/copy");
        for s in &steady {
            println!("{:>12} {:>16.1} {:>12.1} {:>9.1}x", s.frame, s.zero_copy_fps, s.copy_fps, s.zero_copy_over_copy);
        }
    }
    Ok(if consumer_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cuda_main(args: &Args, sizes: Vec<u64>) -> extmem::Result<ExitCode> {
    let default_sizes = args.sizes.join(",") == "4K,64K,1M,16M,256M,1G";
    let sizes = if default_sizes { vec![4 << 20, 64 << 20, 1 << 30, 4 << 30] } else { sizes };
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    eprintln!("extmem bench --cuda: first hand-off to a CUDA process, medians of {}", args.repeat);
    let first = crate::bench_cuda::first_hand_off(&sizes, args.repeat as usize)?;
    eprintln!("steady state, {} frames each", args.frames.max(10) * 10);
    let mut steady = Vec::new();
    for &queue in &args.queue {
        steady.extend(crate::bench_cuda::steady_state(args.frames.max(10) * 10, queue)?);
    }
    eprintln!("one crossing with tiny work, medians of 200");
    let (crossings, context_switch) = crate::bench_cuda::crossings(200, &args.queue)?;
    if let Some(png) = &args.png {
        let pick = |f: fn(&crate::bench_cuda::FirstHandOff) -> f64| first.iter().map(f).collect::<Vec<f64>>();
        let series = [
            ("Vulkan -> CUDA, plain allocation", pick(|f| f.vulkan_plain_ms)),
            ("Vulkan -> CUDA, dedicated allocation", pick(|f| f.vulkan_dedicated_ms)),
            ("CUDA IPC, one allocation re-opened (cached)", pick(|f| f.cuda_ipc_cached_ms)),
            ("CUDA IPC, fresh cuMemAlloc allocation", pick(|f| f.cuda_ipc_fresh_ms)),
            ("staging through pinned host memory", pick(|f| f.pinned_staging_ms)),
        ];
        crate::plot::latency(png, "First hand-off to a CUDA process", &sizes, &series)?;
    }
    let out = serde_json::json!({
        "first_hand_off": first,
        "steady_state": steady,
        "crossings": crossings,
        "context_switch": context_switch,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("serialisable"));
        return Ok(ExitCode::SUCCESS);
    }
    println!("First hand-off to a CUDA process (ms, median)");
    println!(
        "{:>12} {:>14} {:>14} {:>18} {:>15} {:>15}",
        "bytes", "Vulkan plain", "dedicated", "CUDA IPC (cached)", "CUDA IPC fresh", "pinned staging"
    );
    for f in out["first_hand_off"].as_array().into_iter().flatten() {
        println!(
            "{:>12} {:>14.3} {:>14.3} {:>18.3} {:>15.3} {:>15.3}",
            f["bytes"],
            f["vulkan_plain_ms"].as_f64().unwrap_or(0.0),
            f["vulkan_dedicated_ms"].as_f64().unwrap_or(0.0),
            f["cuda_ipc_cached_ms"].as_f64().unwrap_or(0.0),
            f["cuda_ipc_fresh_ms"].as_f64().unwrap_or(0.0),
            f["pinned_staging_ms"].as_f64().unwrap_or(0.0)
        );
    }
    println!("\nSteady state Vulkan fills -> CUDA uses -> back (µs per frame)");
    let cols = [
        "semaphore_us",
        "counter_us",
        "counter_host_us",
        "semaphore_batched_us",
        "ring_free_running_us",
        "vulkan_work_us",
        "cuda_work_us",
        "copy_device_to_device_us",
        "copy_through_host_us",
    ];
    println!(
        "{:>20} {:>12} {:>10} {:>12} {:>13} {:>10} {:>10} {:>12} {:>10} {:>9} {:>10}",
        "queue",
        "frame",
        "semaphore",
        "counter+sem",
        "counter+host",
        "4/crossing",
        "ring of 4",
        "Vulkan alone",
        "CUDA alone",
        "copy D2D",
        "copy host"
    );
    for f in out["steady_state"].as_array().into_iter().flatten() {
        let v: Vec<f64> = cols.iter().map(|c| f[*c].as_f64().unwrap_or(0.0)).collect();
        println!(
            "{:>20} {:>12} {:>10.1} {:>12.1} {:>13.1} {:>10.1} {:>10.1} {:>12.1} {:>10.1} {:>9.1} {:>10.1}",
            f["queue"].as_str().unwrap_or(""),
            f["frame"].as_str().unwrap_or(""),
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5],
            v[6],
            v[7],
            v[8]
        );
    }
    println!("\nOne crossing with tiny work (µs, median of 200)");
    let cols =
        ["vulkan_alone_us", "cuda_alone_us", "alternating_us", "counter_us", "semaphore_us", "semaphore_back_us"];
    println!(
        "{:>20} {:>12} {:>10} {:>11} {:>16} {:>18} {:>14}",
        "queue", "Vulkan alone", "CUDA alone", "alternating", "counter vk->cu", "semaphore vk->cu", "semaphore back"
    );
    for f in out["crossings"].as_array().into_iter().flatten() {
        let v: Vec<f64> = cols.iter().map(|c| f[*c].as_f64().unwrap_or(0.0)).collect();
        println!(
            "{:>20} {:>12.1} {:>10.1} {:>11.1} {:>16.1} {:>18.1} {:>14.1}",
            f["queue"].as_str().unwrap_or(""),
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5]
        );
    }
    let cs = &out["context_switch"];
    println!(
        "two CUDA contexts alternating: {:.1} µs; two Vulkan devices alternating: {:.1} µs",
        cs["two_cuda_contexts_us"].as_f64().unwrap_or(0.0),
        cs["two_vulkan_devices_us"].as_f64().unwrap_or(0.0)
    );
    Ok(ExitCode::SUCCESS)
}
