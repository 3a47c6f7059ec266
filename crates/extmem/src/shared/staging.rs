//! The host-visible staging buffer that reads and writes copy through.

use crate::context::Context;
use crate::error::{Error, Result, VkResultExt};
use ash::vk;
use std::sync::Arc;

/// A host-visible, mapped buffer for copies, kept by its [`SharedMemory`] for reuse.
pub(super) struct Staging {
    ctx: Arc<Context>,
    pub(super) buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    ptr: *mut u8,
    pub(super) len: usize,
}

impl Staging {
    pub(super) fn new(ctx: &Arc<Context>, len: u64) -> Result<Staging> {
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let d = ctx.device();
        // SAFETY: valid create infos on a live device; cleaned up on every error path.
        unsafe {
            let buffer = d
                .create_buffer(&vk::BufferCreateInfo::default().size(len).usage(usage), None)
                .vk("vkCreateBuffer (staging)")?;
            let req = d.get_buffer_memory_requirements(buffer);
            let host = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
            let Some(ty) = ctx.memory_type(req.memory_type_bits, host, vk::MemoryPropertyFlags::HOST_CACHED) else {
                d.destroy_buffer(buffer, None);
                return Err(Error::Unsupported("no host-visible coherent memory for staging".into()));
            };
            let memory = match d.allocate_memory(
                &vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(ty),
                None,
            ) {
                Ok(m) => m,
                Err(e) => {
                    d.destroy_buffer(buffer, None);
                    return Err(Error::Vulkan { call: "vkAllocateMemory (staging)", result: e });
                }
            };
            // From here on, dropping `staging` cleans up.
            let mut staging =
                Staging { ctx: ctx.clone(), buffer, memory, ptr: std::ptr::null_mut(), len: len as usize };
            d.bind_buffer_memory(buffer, memory, 0).vk("vkBindBufferMemory (staging)")?;
            staging.ptr = d.map_memory(memory, 0, len, vk::MemoryMapFlags::empty()).vk("vkMapMemory")? as *mut u8;
            Ok(staging)
        }
    }

    #[allow(clippy::mut_from_ref)]
    pub(super) fn bytes(&self) -> &mut [u8] {
        // SAFETY: mapped for `len` bytes while the staging buffer lives; used by one thread
        // and never while the GPU writes it (`submit` waits).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let d = self.ctx.device();
        // SAFETY: the GPU is done with it (`submit` waits).
        unsafe {
            d.destroy_buffer(self.buffer, None);
            d.free_memory(self.memory, None);
        }
    }
}
