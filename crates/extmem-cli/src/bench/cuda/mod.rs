//! `extmem bench cuda`: Vulkan → CUDA, measured against what CUDA users would do otherwise.
//!
//! A. First hand-off by size, to a CUDA process (export + send + cuImportExternalMemory +
//!    cuExternalMemoryGetMappedBuffer, acknowledged), with plain and dedicated Vulkan
//!    allocations, against CUDA IPC between two processes (cuIpcGetMemHandle + send +
//!    cuIpcOpenMemHandle, acknowledged) of one allocation re-opened each time (cached by the
//!    driver) and of a fresh cuMemAlloc allocation each time, and against staging the bytes through pinned host
//!    memory (device to pinned host, pinned host to device).
//! B. Steady state in one process, per frame: Vulkan fills the frame on the GPU, CUDA copies it
//!    out of the shared memory (its use of the frame), and hands it back; synchronised by the
//!    exported timeline semaphore, by the counter fast path, or replaced by a copy of the frame
//!    (device to device, or through the host); with Vulkan on its general queue and on a
//!    transfer-only queue (the copy engines).
//! C. One crossing with tiny work, per Vulkan queue kind: what synchronisation costs once the
//!    work is negligible, and what alternating the GPU between two contexts costs (two CUDA
//!    contexts, two Vulkan devices) for comparison.


mod crossings;
mod first;
mod steady;
mod util;

use crate::support::child::Timeouts;
use crate::support::error::Result;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::QueueKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Vulkan → CUDA (NVIDIA GPU and CUDA driver needed): the first hand-off against CUDA IPC and
/// pinned staging, the steady-state frame loop with semaphores, the counter fast path and
/// copies, and one crossing with tiny work.
#[derive(clap::Parser)]
#[command(name = "cuda")]
struct Args {
    /// Sizes of the first hand-off, in bytes (K, M, G suffixes allowed).
    #[arg(long, value_delimiter = ',', default_value = "4M,64M,1G,4G", value_parser = crate::support::parse::size)]
    sizes: Vec<u64>,
    /// Repetitions per size (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeat: u64,
    /// Frames per steady-state figure.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..))]
    frames: u64,
    /// Vulkan queue kinds to measure the steady state and the crossings on: general, compute,
    /// transfer (a transfer-only family runs on the copy engines).
    #[arg(long, value_delimiter = ',', default_value = "general,transfer")]
    queue: Vec<QueueKind>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also draw the first hand-off's latencies into this PNG file (its folder must exist).
    #[arg(long, value_name = "FILE", value_parser = crate::support::parse::output_file)]
    png: Option<PathBuf>,
    #[command(flatten)]
    timeouts: Timeouts,
}

/// The definition of `extmem bench cuda`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem bench cuda`.
pub fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let args = Args::from_arg_matches(matches)?;
    crate::support::child::set_timeouts(args.timeouts);
    if args.png.is_some() {
        crate::support::plot::check_font()?;
    }
    let sizes = &args.sizes;
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    eprintln!("extmem bench cuda: first hand-off to a CUDA process, medians of {}", args.repeat);
    let first = first::first_hand_off(sizes, args.repeat as usize)?;
    eprintln!("steady state, {} frames each", args.frames);
    let mut steady = Vec::new();
    for &queue in &args.queue {
        steady.extend(steady::steady_state(args.frames, queue)?);
    }
    eprintln!("one crossing with tiny work, medians of 200");
    let (crossings, context_switch) = crossings::crossings(200, &args.queue)?;
    if let Some(png) = &args.png {
        let pick = |f: fn(&first::FirstHandOff) -> f64| first.iter().map(f).collect::<Vec<f64>>();
        let series = [
            ("Vulkan -> CUDA, plain allocation", pick(|f| f.vulkan_plain_ms)),
            ("Vulkan -> CUDA, dedicated allocation", pick(|f| f.vulkan_dedicated_ms)),
            ("CUDA IPC, one allocation re-opened (cached)", pick(|f| f.cuda_ipc_cached_ms)),
            ("CUDA IPC, fresh cuMemAlloc allocation", pick(|f| f.cuda_ipc_fresh_ms)),
            ("staging through pinned host memory", pick(|f| f.pinned_staging_ms)),
        ];
        crate::support::plot::latency(png, "First hand-off to a CUDA process", sizes, &series)?;
    }
    let out = serde_json::json!({
        "schema_version": crate::support::json::SCHEMA_VERSION,
        "first_hand_off": first,
        "steady_state": steady,
        "crossings": crossings,
        "context_switch": context_switch,
    });
    if args.json {
        crate::support::json::print(out);
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
