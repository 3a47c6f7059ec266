//! The plain structs and enumerated values of the ABI: what describes an image, a buffer, a
//! shared allocation and a pool's pieces. Conversions to and from the library's types are in
//! `convert.rs`.

use crate::vk_types::*;

/// What an `extmem_resource_desc` holds: `EXTMEM_RESOURCE_IMAGE` or `EXTMEM_RESOURCE_BUFFER`
/// (the wire's `kind` values).
pub type extmem_resource_kind = u32;
/// An image.
pub const EXTMEM_RESOURCE_IMAGE: extmem_resource_kind = 1;
/// A buffer.
pub const EXTMEM_RESOURCE_BUFFER: extmem_resource_kind = 2;

/// An image's creation parameters, as an importer must repeat them. 2D when `depth` is 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct extmem_image_desc {
    /// Pixel format.
    pub format: VkFormat,
    /// Width in texels.
    pub width: u32,
    /// Height in texels.
    pub height: u32,
    /// Depth (1 for a 2D image).
    pub depth: u32,
    /// Mip levels (at least 1).
    pub mip_levels: u32,
    /// Array layers (at least 1).
    pub array_layers: u32,
    /// `VK_IMAGE_TILING_OPTIMAL` or `VK_IMAGE_TILING_LINEAR`.
    pub tiling: VkImageTiling,
    /// Usage (not 0).
    pub usage: VkImageUsageFlags,
}

/// A buffer's creation parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct extmem_buffer_desc {
    /// Size in bytes.
    pub size: u64,
    /// Usage (not 0).
    pub usage: VkBufferUsageFlags,
}

/// An image or a buffer: `kind` says which of the two members counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct extmem_resource_desc {
    /// `EXTMEM_RESOURCE_IMAGE` or `EXTMEM_RESOURCE_BUFFER`.
    pub kind: extmem_resource_kind,
    /// The image, when `kind` is `EXTMEM_RESOURCE_IMAGE`.
    pub image: extmem_image_desc,
    /// The buffer, when `kind` is `EXTMEM_RESOURCE_BUFFER`.
    pub buffer: extmem_buffer_desc,
}

/// Everything an importer needs to import shared memory and the resource in it (the `Share`
/// message's body, docs/src/protocol.md §3).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct extmem_descriptor {
    /// `sizeof(extmem_descriptor)` where it is passed by pointer; ignored inside an
    /// `extmem_message`.
    pub struct_size: u32,
    /// The image or buffer bound to the memory.
    pub resource: extmem_resource_desc,
    /// How the memory travels: `VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT`,
    /// `..._DMA_BUF_BIT_EXT` or `..._HOST_ALLOCATION_BIT_EXT`.
    pub handle_type: VkExternalMemoryHandleTypeFlagBits,
    /// `VkMemoryAllocateInfo::allocationSize` of the exported memory.
    pub allocation_size: u64,
    /// The exporter's memory type index (an opaque fd import uses the same).
    pub memory_type_index: u32,
    /// The exporter's `VkMemoryRequirements::memoryTypeBits`.
    pub memory_type_bits: u32,
    /// `VK_TRUE` when the memory is a dedicated allocation for the resource.
    pub dedicated: VkBool32,
    /// Where the resource starts in the memory.
    pub offset: u64,
    /// The image's layout when it was handed over (`VK_IMAGE_LAYOUT_GENERAL`); undefined (0)
    /// for buffers.
    pub layout: VkImageLayout,
    /// The exporter's `VkPhysicalDeviceIDProperties::deviceUUID`.
    pub device_uuid: [u8; 16],
    /// The exporter's `driverUUID` (all zero: memory another API made).
    pub driver_uuid: [u8; 16],
    /// For a `LINEAR` image, the bytes between rows of mip 0, layer 0; 0 otherwise.
    pub row_pitch: u64,
}

/// One exportable block of a pool (the `PoolBlock` message's body, protocol.md §5).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct extmem_block_desc {
    /// The block's number in its pool.
    pub block: u32,
    /// `allocationSize` of the block.
    pub size: u64,
    /// `VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT`.
    pub handle_type: VkExternalMemoryHandleTypeFlagBits,
    /// The exporter's memory type index.
    pub memory_type_index: u32,
    /// The exporter's `deviceUUID`.
    pub device_uuid: [u8; 16],
    /// The exporter's `driverUUID`.
    pub driver_uuid: [u8; 16],
}

/// A sub-allocation of a pool: `size` bytes at `offset` of block `block`, in its
/// `generation` (new for every sub-allocation, so a stale or made-up handle is refused).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct extmem_pool_handle {
    /// The block.
    pub block: u32,
    /// Where the sub-allocation starts in the block.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its generation (not 0).
    pub generation: u64,
}

/// A pooled hand-off (the `PoolShare` message's body): where the resource lies and how to
/// make it again on the other side.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct extmem_pooled_desc {
    /// The sub-allocation the resource is bound to (at its offset).
    pub handle: extmem_pool_handle,
    /// The image or buffer.
    pub resource: extmem_resource_desc,
    /// The image's layout when it was handed over; 0 (undefined) for buffers.
    pub layout: VkImageLayout,
    /// For a `LINEAR` image, the bytes between rows of mip 0, layer 0; 0 otherwise.
    pub row_pitch: u64,
}
