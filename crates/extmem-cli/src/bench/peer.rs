//! `extmem bench peer`: a frame of GPU 0's Vulkan memory for a consumer on GPU 1,
//! per frame, by every way there is, beside the same-GPU zero-copy path:
//!
//! - same GPU, zero-copy: the consumer imports the memory where it is; nothing moves (the
//!   figure is the stream round trip a frame costs there);
//! - CUDA peer copy: imported on GPU 0, `cuMemcpyPeerAsync` into memory of GPU 1 (NVLink or
//!   PCIe), what `extmem demo --consumer cuda --consumer-gpu 1 --peer-copy` does;
//! - CUDA staging through pinned host memory: device → host on GPU 0, host → device on GPU 1;
//! - Vulkan through host memory (a Vulkan consumer on GPU 1): GPU 0 copies the frame into a
//!   host-memory buffer (VK_EXT_external_memory_host, shared as a memfd), GPU 1 copies it from
//!   the imported buffer into its own memory.
//!
//! One process holds every side: what is measured is the bytes' trip, not the socket.

use crate::support::error::Result;
use crate::support::timing::{median, us_since};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use extmem::{caps, pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, SharedMemory};
use extmem_cuda::{Cuda, DeviceAllocation, HostStaging};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// One path's per-frame figures at one size.
#[derive(Serialize)]
struct PathFigure {
    path: &'static str,
    bytes: u64,
    median_us: f64,
    /// None where nothing moves.
    gb_per_s: Option<f64>,
}

fn vulkan_on(uuid: &[u8; 16]) -> Result<Arc<Context>> {
    let list = caps::query_all(false, &caps::Query::default())?;
    let index = list
        .iter()
        .find(|c| c.device_uuid == caps::hex(uuid))
        .map(|c| c.index)
        .ok_or_else(|| extmem::Error::Unsupported(format!("no Vulkan device has the UUID {}", caps::hex(uuid))))?;
    Ok(Context::new(&ContextOptions::default().device(Some(index)).app_name("extmem bench peer"))?)
}

fn buffer(ctx: &Arc<Context>, size: u64, handle_type: HandleType) -> Result<SharedMemory> {
    let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    Ok(SharedMemory::new_buffer(ctx, desc, handle_type, Dedicated::Always)?)
}

/// The median of `frames` timings of `step`, in microseconds.
fn time(frames: u64, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    step()?; // warm-up
    let mut t = Vec::new();
    for _ in 0..frames {
        let start = Instant::now();
        step()?;
        t.push(us_since(start));
    }
    Ok(median(t))
}

/// Copies all of `src` into `dst` on `ctx`'s queue and waits. Plain buffers of one device; the
/// shared ones stay on the queue family that last used them (one process, one family each).
fn vk_copy(ctx: &Context, src: &SharedMemory, dst: &SharedMemory, size: u64) -> Result<()> {
    let (Some(s), Some(d)) = (src.buffer(), dst.buffer()) else {
        return Err(extmem::Error::Unsupported("buffers only".into()).into());
    };
    Ok(ctx.submit(|dev, cb| {
        let region = vk::BufferCopy { src_offset: 0, dst_offset: 0, size };
        // SAFETY: two live buffers of `size` bytes of this device; recording state.
        unsafe { dev.cmd_copy_buffer(cb, s, d, &[region]) };
    })?)
}

fn one_size(size: u64, frames: u64, owner: &Cuda, consumer: &Cuda) -> Result<Vec<PathFigure>> {
    let len = size as usize;
    let vk0 = vulkan_on(&owner.uuid())?;
    let frame = buffer(&vk0, size, HandleType::OpaqueFd)?;
    frame.write(&pattern::fill(len, 1), Handoff::host())?;
    let mut out = Vec::new();
    let mut add = |path: &'static str, us: f64| {
        let gb_per_s = (!path.contains("zero-copy")).then(|| size as f64 / us / 1e3);
        out.push(PathFigure { path, bytes: size, median_us: us, gb_per_s });
    };

    let (desc, fd) = frame.export()?;
    let same = owner.import_memory(&desc, fd)?;
    same.check_device(&desc)?;
    add("same GPU, zero-copy (nothing moves)", time(frames, || Ok(owner.synchronize()?))?);

    let (desc, fd) = frame.export()?;
    let peer = consumer.import_memory_peer(&desc, fd)?;
    let peer_us = time(frames, || {
        peer.copy()?;
        Ok(peer.owner().synchronize()?)
    })?;
    check(&peer.local().to_host(consumer)?, "the peer copy")?;
    add(
        if peer.peer_access() { "CUDA peer copy (direct peer access)" } else { "CUDA peer copy (no direct access)" },
        peer_us,
    );

    let staging = HostStaging::new(owner, len)?;
    let dst = DeviceAllocation::new(consumer, len)?;
    add(
        "CUDA staged through pinned host memory",
        time(frames, || Ok(staging.copy(owner, &same, consumer, &dst)?))?,
    );
    check(&dst.to_host(consumer)?, "the staged copy")?;
    drop((peer, staging, dst, same));

    let vk1 = vulkan_on(&consumer.uuid())?;
    if vk0.supports_handle_type(HandleType::HostAllocation) && vk1.supports_handle_type(HandleType::HostAllocation) {
        let host = buffer(&vk0, size, HandleType::HostAllocation)?;
        let (desc, fd) = host.export()?;
        let seen = SharedMemory::import(&vk1, &desc, fd)?;
        let local = buffer(&vk1, size, HandleType::OpaqueFd)?;
        let us = time(frames, || {
            vk_copy(&vk0, &frame, &host, size)?;
            vk_copy(&vk1, &seen, &local, size)
        })?;
        check(&local.read(Handoff::host())?, "the Vulkan copy through host memory")?;
        add("Vulkan through host memory (GPU 0 → memfd → GPU 1)", us);
    }
    Ok(out)
}

fn check(bytes: &[u8], what: &str) -> Result<()> {
    match pattern::first_mismatch(bytes, 1) {
        None => Ok(()),
        Some((at, seen, want)) => {
            Err(extmem::Error::Peer(format!("{what} has byte {at} = {seen:#04x}, expected {want:#04x}")).into())
        }
    }
}

/// A frame of GPU 0 for a consumer on GPU 1 (two CUDA devices needed), by CUDA peer copy, by
/// staging through host memory and by Vulkan through host memory, beside the same-GPU
/// zero-copy path.
#[derive(clap::Parser)]
#[command(name = "peer")]
struct Args {
    /// Frame sizes in bytes (K, M, G suffixes) [default: 1080p and 4K RGBA8 frames, 256M].
    #[arg(long, value_delimiter = ',', value_parser = crate::support::parse::size)]
    sizes: Option<Vec<u64>>,
    /// Frames timed per path and size (the median is reported).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(10..))]
    frames: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The definition of `extmem bench peer`.
pub fn cli() -> Command {
    Args::command()
}

/// Runs `extmem bench peer`.
pub fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let a = Args::from_arg_matches(matches)?;
    let sizes = a.sizes.unwrap_or_else(|| vec![1920 * 1080 * 4, 3840 * 2160 * 4, 256 << 20]);
    let (frames, json, sizes) = (a.frames, a.json, &sizes[..]);
    let uuids = extmem_cuda::device_uuids()?;
    if uuids.len() < 2 {
        return Err(extmem::Error::Unsupported(format!(
            "bench peer needs two CUDA devices; CUDA sees {}",
            uuids.len()
        ))
        .into());
    }
    let (owner, consumer) = (Cuda::new(0)?, Cuda::new(1)?);
    eprintln!(
        "extmem bench peer: frames of GPU 0 ({}) for a consumer on GPU 1 ({}), medians of {frames}",
        caps::hex(&owner.uuid()),
        caps::hex(&consumer.uuid())
    );
    let mut all = Vec::new();
    for &size in sizes {
        all.extend(one_size(size, frames, &owner, &consumer)?);
    }
    if json {
        crate::support::json::print(
            serde_json::json!({ "gpu0": caps::hex(&owner.uuid()), "gpu1": caps::hex(&consumer.uuid()), "paths": all }),
        );
    } else {
        println!("{:>12}  {:<52} {:>12} {:>10}", "bytes", "path", "median µs", "GB/s");
        for f in &all {
            let rate = f.gb_per_s.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into());
            println!("{:>12}  {:<52} {:>12.1} {rate:>10}", f.bytes, f.path, f.median_us);
        }
    }
    Ok(ExitCode::SUCCESS)
}
