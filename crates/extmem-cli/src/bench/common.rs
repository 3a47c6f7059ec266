//! What `first-handoff` and `steady` share: the probing consumer process, the shared buffers,
//! the zero-copy hand-off and the copying baseline.

use crate::support::child::Peer;
use crate::support::error::Result;
use crate::support::timing::{monotonic_ns, ms_since};
use extmem::transport::Message;
use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, PathKind, QueueKind,
    SharedMemory,
};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

/// The producer's context and a consumer process that probes (4 KiB per frame, no write-back).
pub fn start(nv: bool, queue: QueueKind) -> Result<(Arc<Context>, Peer)> {
    let path = if nv { PathKind::Nv } else { PathKind::Khr };
    let ctx = Context::new(&ContextOptions::default().path(path).app_name("extmem bench").queue(queue))?;
    // SAFETY: no other thread exists yet; the child inherits the variable.
    unsafe { std::env::set_var("EXTMEM_PEER_QUIET", "1") };
    let peer = Peer::spawn(false, monotonic_ns(), &["--probe"])?;
    Ok((ctx, peer))
}

/// A dedicated exportable buffer of `size` bytes, filled with the pattern of frame 0.
pub fn buffer(ctx: &Arc<Context>, size: u64) -> extmem::Result<SharedMemory> {
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

/// Zero-copy: export, send, the peer imports and acknowledges (ms).
pub fn zero_copy(peer: &Peer, shared: &SharedMemory) -> extmem::Result<f64> {
    let t = Instant::now();
    let (desc, fd) = shared.export()?;
    peer.channel.send(&Message::Share(desc), &[fd.as_fd()])?;
    drop(fd);
    expect_verdict(peer)?;
    let ms = ms_since(t);
    expect_verdict(peer)?; // the peer released the previous import (not timed)
    Ok(ms)
}

/// Copying: read back into a memfd, send it, the peer maps it and uploads into its memory (ms).
pub fn copy(peer: &Peer, shared: &SharedMemory) -> extmem::Result<f64> {
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
