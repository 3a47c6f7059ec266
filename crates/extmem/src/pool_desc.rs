//! What the pool protocol carries (the ground floor under [`crate::pool`] and the wire format,
//! which encodes these): a block of exported memory, a handle on a sub-allocation in one, and
//! the resource a sub-allocation holds.

use crate::desc::ResourceDesc;
use crate::handle::HandleType;
use ash::vk;

/// One exportable block of a pool: sent once to each consumer, with its descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockDesc {
    /// The block's number in its pool.
    pub block: u32,
    /// `VkMemoryAllocateInfo::allocationSize` of the block.
    pub size: u64,
    /// How the block travels (opaque fd).
    pub handle_type: HandleType,
    /// The exporter's memory type index (the importer must use the same).
    pub memory_type_index: u32,
    /// The exporter's `deviceUUID`.
    pub device_uuid: [u8; 16],
    /// The exporter's `driverUUID`.
    pub driver_uuid: [u8; 16],
}

/// A sub-allocation: `size` bytes at `offset` of block `block`, in its `generation` (every
/// sub-allocation gets a new one, so a handle kept after its release, or made up, is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolHandle {
    /// The block.
    pub block: u32,
    /// Where the sub-allocation starts in the block.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its generation.
    pub generation: u64,
}

impl PoolHandle {
    /// The first byte past the sub-allocation (saturating: a forged handle cannot overflow).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }
}

impl std::fmt::Display for PoolHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "block {} bytes {}..{} (generation {})", self.block, self.offset, self.end(), self.generation)
    }
}

/// A pooled hand-off: where the resource lies and how to make it again on the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PooledDesc {
    /// The sub-allocation the resource is bound to (at its offset).
    pub handle: PoolHandle,
    /// The image or buffer.
    pub resource: ResourceDesc,
    /// The image's layout when it was handed over; `UNDEFINED` for buffers.
    pub layout: vk::ImageLayout,
    /// For a `LINEAR` image, the bytes between rows of mip 0, layer 0 (which start at the
    /// handle's offset); 0 otherwise.
    pub row_pitch: u64,
}
