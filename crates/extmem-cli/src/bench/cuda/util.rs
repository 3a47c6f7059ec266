//! What the CUDA benchmarks share: buffers, CUDA results, queue names.

use crate::support::error::cuda_as_extmem as cu;
use extmem::{
    vk, BufferDesc, Context, Dedicated, HandleType, SharedMemory,
};
use extmem_cuda::cudarc::driver::sys;
use std::sync::Arc;

/// An exportable buffer of `size` bytes.
pub fn buffer(ctx: &Arc<Context>, size: u64, dedicated: Dedicated) -> extmem::Result<SharedMemory> {
    let desc = BufferDesc { size, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST };
    SharedMemory::new_buffer(ctx, desc, HandleType::OpaqueFd, dedicated)
}

/// A raw CUDA result as the CLI's error.
pub fn check(r: sys::CUresult, call: &'static str) -> extmem::Result<()> {
    r.result().map_err(|e| cu(extmem_cuda::Error::Cuda { call, source: e }))
}

/// How a context's queue is named in the results: the kind, with the family's abilities.
pub fn queue_name(ctx: &Context) -> String {
    let flags = ctx.queue_flags();
    let kind = if flags.contains(vk::QueueFlags::GRAPHICS) {
        "general"
    } else if flags.contains(vk::QueueFlags::COMPUTE) {
        "compute"
    } else {
        "transfer"
    };
    format!("{kind} (family {})", ctx.queue_family())
}
