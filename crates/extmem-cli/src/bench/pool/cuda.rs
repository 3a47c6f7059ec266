//! The Vulkan -> CUDA half of `extmem bench pool`: today's hand-off of a dedicated
//! allocation, CUDA IPC (a fresh `cuMemAlloc` allocation each time, and one allocation
//! re-opened, which the driver serves from a cache) and the pooled hand-off, per size.

use crate::bench::pool::measure::{buffer_desc, pooled, today, Row};
use crate::support::child::Peer;
use crate::support::error::Result;
use crate::support::timing::{median, monotonic_ns, ms_since};
use extmem::pool::{Pool, PoolLink, PoolOptions};
use extmem::transport::Message;
use extmem::{Context, Dedicated, HandleType, SharedMemory};
use extmem_cuda::{Cuda, DeviceAllocation};
use std::sync::Arc;
use std::time::Instant;

fn ipc(peer: &Peer, cuda: &Cuda, a: &DeviceAllocation) -> Result<f64> {
    let t = Instant::now();
    let handle = a.ipc_handle()?;
    peer.channel.send(&Message::CudaIpc { handle, len: a.len() as u64, device_uuid: cuda.uuid() }, &[])?;
    match peer.channel.recv_plain("Verdict")? {
        Message::Verdict { ok: true, .. } => Ok(ms_since(t)),
        other => Err(extmem::Error::Protocol(format!("expected a verdict, got {other:?}")).into()),
    }
}

/// Fills the CUDA columns of `rows`; `Ok(Err(why))` where CUDA cannot be measured here.
pub fn run(ctx: &Arc<Context>, rows: &mut [Row], repeat: usize) -> Result<std::result::Result<(), String>> {
    if !extmem_cuda::available() {
        return Ok(Err("no CUDA driver on this machine".into()));
    }
    let cuda = match Cuda::for_vulkan(ctx) {
        Ok(c) => c,
        Err(extmem_cuda::Error::NoMatchingDevice(why)) => return Ok(Err(why)),
        Err(e) => return Err(e.into()),
    };
    let peer = Peer::spawn(false, monotonic_ns(), &["--pool", "--cuda"])?;
    let pool = Pool::new(ctx, PoolOptions::default())?;
    // The consumer closes the previous mapping when it opens the next: keep the last fresh
    // allocation until then.
    let mut last_fresh: Option<DeviceAllocation> = None;
    {
        let mut link = PoolLink::new(&pool, &peer.channel);
        for row in rows.iter_mut() {
            let size = row.bytes;
            let shared = SharedMemory::new_buffer(ctx, buffer_desc(size), HandleType::OpaqueFd, Dedicated::Always)?;
            let cached_alloc = DeviceAllocation::new(&cuda, size as usize)?;
            let (mut spans, mut imports, mut fresh, mut reopened) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let repeat = if size > 64 << 20 { repeat.min(3) } else { repeat }.max(1);
            for _ in 0..repeat {
                let (ms, steps) = today(&peer, &shared)?;
                spans.push(ms);
                imports.push(steps.iter().find(|(k, _)| *k == "import_allocate").map_or(0.0, |s| s.1) / 1e3);
                reopened.push(ipc(&peer, &cuda, &cached_alloc)?);
                let a = DeviceAllocation::new(&cuda, size as usize)?;
                fresh.push(ipc(&peer, &cuda, &a)?);
                last_fresh = Some(a);
            }
            drop(shared);
            let (created, first, warm) = pooled(&pool, &mut link, size)?;
            row.cuda_today_ms = Some(median(spans));
            row.cuda_today_import_ms = Some(median(imports));
            row.cuda_ipc_cached_ms = Some(median(reopened));
            row.cuda_ipc_fresh_ms = Some(median(fresh));
            (row.cuda_pool_block_created_ms, row.cuda_pool_first_hand_off_ms, row.cuda_pool_us) =
                (created, Some(first), Some(warm));
            eprintln!(
                "  {size:>11} bytes Vulkan -> CUDA: today {:.3} ms, pooled {warm:.1} us, CUDA IPC fresh {:.3} ms, \
                 re-opened {:.3} ms",
                row.cuda_today_ms.unwrap_or(0.0),
                row.cuda_ipc_fresh_ms.unwrap_or(0.0),
                row.cuda_ipc_cached_ms.unwrap_or(0.0)
            );
        }
    }
    let ok = peer.finish()?;
    drop(last_fresh);
    if !ok {
        return Err(extmem::Error::Peer("the CUDA pool consumer failed".into()).into());
    }
    Ok(Ok(()))
}

/// Pooled hand-offs to a PyTorch consumer process (`extmem.PoolConsumer`): fills the torch
/// columns of `rows`.
pub fn torch(ctx: &Arc<Context>, rows: &mut [Row], script: &std::path::Path) -> Result<()> {
    let mut cmd = crate::support::python::command();
    cmd.arg(script);
    let peer = Peer::spawn_command(cmd, monotonic_ns())?;
    let pool = Pool::new(ctx, PoolOptions::default())?;
    {
        let mut link = PoolLink::new(&pool, &peer.channel);
        for row in rows.iter_mut() {
            let (_, first, warm) = pooled(&pool, &mut link, row.bytes)?;
            (row.torch_pool_first_hand_off_ms, row.torch_pool_us) = (Some(first), Some(warm));
            eprintln!("  {:>11} bytes Vulkan -> PyTorch: pooled {warm:.1} us", row.bytes);
        }
    }
    if !peer.finish()? {
        return Err(extmem::Error::Peer("the PyTorch pool consumer failed".into()).into());
    }
    Ok(())
}
