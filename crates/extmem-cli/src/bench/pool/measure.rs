//! What both halves of `bench pool` measure: today's hand-off step by step, and pooled
//! hand-offs on a warm pool; one row of results per size.

use crate::support::child::Peer;
use crate::support::timing::{median, monotonic_ns, ms_since, us_since};
use extmem::pool::{Pool, PoolLink};
use extmem::transport::Message;
use extmem::{vk, BufferDesc, SharedMemory};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::Instant;

/// Pooled hand-offs timed per size (after one untimed warm-up).
pub const POOLED_REPEAT: usize = 51;

/// One size: today's hand-off and the pooled one, for both consumers.
#[derive(Serialize, Default)]
pub struct Row {
    pub bytes: u64,
    pub vulkan_today_ms: f64,
    /// Median of each step of today's hand-off (µs): export; send (the sendmsg call) and
    /// send_to_receipt (from export done to the consumer's recv returning: overlaps send);
    /// the consumer's checks, create_resource, import_allocate (vkAllocateMemory import),
    /// bind, free_previous; ack (reply to receipt); and close_fd_after (outside the span).
    pub vulkan_today_steps_us: BTreeMap<&'static str, f64>,
    /// Today's span with a new producer allocation each time (the consumer imports memory it
    /// never imported before), and that import's vkAllocateMemory alone.
    pub vulkan_today_fresh_allocation_ms: f64,
    pub vulkan_today_fresh_import_allocate_ms: f64,
    pub vulkan_pool_us: f64,
    pub vulkan_pool_block_created_ms: Option<f64>,
    pub vulkan_pool_first_hand_off_ms: f64,
    pub cuda_today_ms: Option<f64>,
    pub cuda_today_import_ms: Option<f64>,
    pub cuda_pool_us: Option<f64>,
    pub cuda_pool_block_created_ms: Option<f64>,
    pub cuda_pool_first_hand_off_ms: Option<f64>,
    pub cuda_ipc_fresh_ms: Option<f64>,
    pub cuda_ipc_cached_ms: Option<f64>,
    /// Pooled hand-off to a PyTorch process (`--torch`): until it holds the device pointer.
    pub torch_pool_us: Option<f64>,
    pub torch_pool_first_hand_off_ms: Option<f64>,
}

pub fn buffer_desc(size: u64) -> BufferDesc {
    BufferDesc::new(size, vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
}

fn field(detail: &str, key: &str) -> extmem::Result<u64> {
    detail
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .ok_or_else(|| extmem::Error::Protocol(format!("the consumer's reply has no {key}: {detail:?}")))
}

/// Today's hand-off of `shared`, step by step (µs), and its whole span (ms).
pub fn today(peer: &Peer, shared: &SharedMemory) -> extmem::Result<(f64, Vec<(&'static str, f64)>)> {
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
pub fn pooled(pool: &Pool, link: &mut PoolLink<'_>, size: u64) -> extmem::Result<(Option<f64>, f64, f64)> {
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

