//! The domain's ground floor: what shared memory holds ([`ResourceDesc`]: an [`ImageDesc`] or a
//! [`BufferDesc`]) and everything an importer needs to know about it ([`Descriptor`]). The
//! wire format ([`crate::transport::message`]) encodes these; it does not own them.

use crate::handle::HandleType;
use ash::vk;

/// An image's creation parameters, as the importer must repeat them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageDesc {
    /// Pixel format.
    pub format: vk::Format,
    /// Width, height, depth.
    pub extent: vk::Extent3D,
    /// Mip levels.
    pub mip_levels: u32,
    /// Array layers.
    pub array_layers: u32,
    /// Tiling.
    pub tiling: vk::ImageTiling,
    /// Usage.
    pub usage: vk::ImageUsageFlags,
}

impl ImageDesc {
    /// A single-level 2D image.
    pub fn new_2d(format: vk::Format, width: u32, height: u32, usage: vk::ImageUsageFlags) -> Self {
        ImageDesc {
            format,
            extent: vk::Extent3D { width, height, depth: 1 },
            mip_levels: 1,
            array_layers: 1,
            tiling: vk::ImageTiling::OPTIMAL,
            usage,
        }
    }

    /// The same image with `tiling` (`LINEAR` for bytes another API addresses directly).
    pub fn tiling(mut self, tiling: vk::ImageTiling) -> Self {
        self.tiling = tiling;
        self
    }

    /// The same image with `layers` array layers.
    pub fn array_layers(mut self, layers: u32) -> Self {
        self.array_layers = layers;
        self
    }
}

/// A buffer's creation parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferDesc {
    /// Size in bytes.
    pub size: u64,
    /// Usage.
    pub usage: vk::BufferUsageFlags,
}

impl BufferDesc {
    /// A buffer of `size` bytes for `usage`.
    pub fn new(size: u64, usage: vk::BufferUsageFlags) -> Self {
        BufferDesc { size, usage }
    }
}

/// What the shared memory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceDesc {
    /// An image.
    Image(ImageDesc),
    /// A buffer.
    Buffer(BufferDesc),
}

/// Everything an importer needs to import shared memory and the resource in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The image or buffer bound to the memory.
    pub resource: ResourceDesc,
    /// How the memory travels (the descriptor that comes with the message).
    pub handle_type: HandleType,
    /// `VkMemoryAllocateInfo::allocationSize` of the exported memory.
    pub allocation_size: u64,
    /// The exporter's memory type index (an opaque fd import must use the same).
    pub memory_type_index: u32,
    /// The exporter's `VkMemoryRequirements::memoryTypeBits`.
    pub memory_type_bits: u32,
    /// The memory is a dedicated allocation for the resource (import it as one too).
    pub dedicated: bool,
    /// Where the resource starts in the memory.
    pub offset: u64,
    /// The image's layout when it was handed over (`GENERAL`); `UNDEFINED` for buffers.
    pub layout: vk::ImageLayout,
    /// The exporter's `VkPhysicalDeviceIDProperties::deviceUUID`.
    pub device_uuid: [u8; 16],
    /// The exporter's `VkPhysicalDeviceIDProperties::driverUUID`.
    pub driver_uuid: [u8; 16],
    /// For a `LINEAR` image: the bytes between rows of mip level 0, layer 0, whose texels start
    /// at `offset` (`vkGetImageSubresourceLayout`), so that another API can address them (a
    /// strided tensor, say). 0 otherwise.
    pub row_pitch: u64,
}

impl Descriptor {
    /// The driver UUID of memory another API made (CUDA's `cuMemExportToShareableHandle`: CUDA
    /// has no driver UUID). An importer checks the device UUID only and, with no exporter's
    /// memory type to repeat, picks a `DEVICE_LOCAL` type among the resource's `memoryTypeBits`
    /// and the descriptor's `memory_type_bits`. Importing such an opaque fd is outside the
    /// letter of the Vulkan specification (opaque fds are specified for memory exported by
    /// Vulkan or an API with matching UUIDs); NVIDIA's driver supports it.
    pub const NO_DRIVER_UUID: [u8; 16] = [0; 16];

    /// Whether the memory was made by another API ([`Descriptor::NO_DRIVER_UUID`]).
    pub fn from_other_api(&self) -> bool {
        self.driver_uuid == Self::NO_DRIVER_UUID
    }
}
