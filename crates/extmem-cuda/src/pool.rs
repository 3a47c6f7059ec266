//! The CUDA consumer of an extmem pool (`extmem::pool`): each block imported and mapped once
//! (`cuImportExternalMemory` of the plain allocation, one `cuExternalMemoryGetMappedBuffer` of
//! all of it), then every hand-off a device pointer at its offset, with no driver call.
//!
//! Buffers and `LINEAR` images are offsets into the block. `OPTIMAL` images are refused: CUDA
//! reaches driver-tiled bytes only through a mipmapped array made per image
//! (`cuExternalMemoryGetMappedMipmappedArray`), which is a driver call per hand-off; hand
//! them to Vulkan consumers.

use crate::{CuCall, Cuda, CudaMemory, Error, Result};
use cudarc::driver::sys;
use extmem::pool::{BlockDesc, BlockLimits, PoolHandle, PooledDesc, RemoteBlocks};
use extmem::{vk, BufferDesc, Descriptor, ResourceDesc};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The blocks of one producer's pool mapped into CUDA, and the sub-allocations held in them.
#[derive(Default)]
pub struct PoolMapper {
    blocks: RemoteBlocks<Arc<CudaMemory>>,
    /// Whether the limits were given (else the device's memory is the byte limit).
    limits_set: bool,
}

/// A sub-allocation seen by CUDA: a device pointer into a mapped block (which it keeps
/// mapped while it lives).
pub struct PooledPointer {
    desc: PooledDesc,
    ptr: sys::CUdeviceptr,
    block: Arc<CudaMemory>,
}

impl PoolMapper {
    /// A mapper with no block yet.
    pub fn new() -> PoolMapper {
        PoolMapper::default()
    }

    /// A mapper with no block yet, taking at most `limits` of them.
    pub fn with_limits(limits: BlockLimits) -> PoolMapper {
        PoolMapper { blocks: RemoteBlocks::with_limits(limits), limits_set: true }
    }

    /// Imports and maps a block once (a block sent again is refused); `fd` is taken in every
    /// case.
    ///
    /// At most 256 blocks and the device's memory in bytes of blocks are taken from one producer
    /// (unless [`PoolMapper::with_limits`] said otherwise); the block passes extmem's import
    /// gate as [`Cuda::import_memory`] does.
    pub fn add_block(&mut self, cuda: &Cuda, desc: &BlockDesc, fd: OwnedFd) -> Result<()> {
        if !self.limits_set {
            let total = cuda.context().total_mem().cu("cuDeviceTotalMem")? as u64;
            self.blocks.set_limits(BlockLimits::default().max_bytes(total));
            self.limits_set = true;
        }
        self.blocks.check_new_block(desc).map_err(|e| Error::Import(e.to_string()))?;
        let whole = Descriptor {
            resource: ResourceDesc::Buffer(BufferDesc::new(desc.size, vk::BufferUsageFlags::TRANSFER_SRC)),
            handle_type: desc.handle_type,
            allocation_size: desc.size,
            memory_type_index: desc.memory_type_index,
            memory_type_bits: 1u32.checked_shl(desc.memory_type_index).unwrap_or(0),
            dedicated: false,
            offset: 0,
            layout: vk::ImageLayout::UNDEFINED,
            device_uuid: desc.device_uuid,
            driver_uuid: desc.driver_uuid,
            row_pitch: 0,
        };
        let mapped = cuda.import_memory(&whole, fd)?;
        self.blocks.insert_block(*desc, Arc::new(mapped)).map_err(|e| Error::Import(e.to_string()))
    }

    /// The device pointer of a hand-off: the block's mapping plus the offset. Refused when the
    /// block was never sent, the range leaves it or overlaps one held, or it is an `OPTIMAL`
    /// image.
    pub fn hold(&mut self, desc: &PooledDesc) -> Result<PooledPointer> {
        if let ResourceDesc::Image(i) = desc.resource {
            if i.tiling != vk::ImageTiling::LINEAR {
                return Err(Error::Import(format!(
                    "{:?} images are in the driver's tiling, which CUDA addresses only through a mipmapped array \
                     per image: hand them to Vulkan consumers, or share LINEAR images",
                    i.tiling
                )));
            }
        }
        let (_, mapped) = self.blocks.hold(&desc.handle).map_err(|e| Error::Import(e.to_string()))?;
        Ok(PooledPointer { desc: *desc, ptr: mapped.device_ptr() + desc.handle.offset, block: mapped.clone() })
    }

    /// Forgets a held pointer: the handle to send back in `PoolRelease`.
    pub fn release(&mut self, pointer: PooledPointer) -> Result<PoolHandle> {
        self.release_handle(&pointer.desc.handle)?;
        Ok(pointer.desc.handle)
    }

    /// Forgets the hold on `handle` where its pointer is shared (a tensor may still hold the
    /// block mapped; the caller promises not to touch the range any more).
    pub fn release_handle(&mut self, handle: &PoolHandle) -> Result<()> {
        self.blocks.release(handle).map_err(|e| Error::Import(e.to_string()))
    }

    /// A mapped block (its whole range).
    pub fn block(&self, block: u32) -> Option<&Arc<CudaMemory>> {
        self.blocks.block(block)
    }
}

impl std::fmt::Debug for PooledPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledPointer").field("desc", &self.desc).field("ptr", &self.ptr).finish()
    }
}

impl PooledPointer {
    /// The device pointer (the sub-allocation's first byte).
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }
    /// The sub-allocation's size in bytes.
    pub fn len(&self) -> u64 {
        self.desc.handle.size
    }
    /// Whether it is empty (never: handles are checked).
    pub fn is_empty(&self) -> bool {
        self.desc.handle.size == 0
    }
    /// What was handed over (a `LINEAR` image's row pitch is in it).
    pub fn desc(&self) -> &PooledDesc {
        &self.desc
    }
    /// The mapped block it lies in (kept mapped while this is held: a tensor on the pointer
    /// keeps it).
    pub fn block(&self) -> &Arc<CudaMemory> {
        &self.block
    }
}
