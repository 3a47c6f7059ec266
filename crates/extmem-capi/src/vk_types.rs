//! The Vulkan types of the C ABI under `<vulkan/vulkan.h>`'s own names. The header does not
//! define them (cbindgen's `export.exclude` lists them): it includes `<vulkan/vulkan.h>`.
//! ash's types have the same layout (`#[repr(transparent)]` over the C type; non-dispatchable
//! handles are 64-bit, which `lib.rs` requires).

use ash::vk;

/// `VkInstance`.
pub type VkInstance = vk::Instance;
/// `VkPhysicalDevice`.
pub type VkPhysicalDevice = vk::PhysicalDevice;
/// `VkDevice`.
pub type VkDevice = vk::Device;
/// `VkQueue`.
pub type VkQueue = vk::Queue;
/// `VkImage`.
pub type VkImage = vk::Image;
/// `VkBuffer`.
pub type VkBuffer = vk::Buffer;
/// `VkDeviceMemory`.
pub type VkDeviceMemory = vk::DeviceMemory;
/// `VkSemaphore`.
pub type VkSemaphore = vk::Semaphore;
/// `VkCommandBuffer`.
pub type VkCommandBuffer = vk::CommandBuffer;
/// `VkFormat`.
pub type VkFormat = vk::Format;
/// `VkImageTiling`.
pub type VkImageTiling = vk::ImageTiling;
/// `VkImageLayout`.
pub type VkImageLayout = vk::ImageLayout;
/// `VkImageUsageFlags`.
pub type VkImageUsageFlags = vk::ImageUsageFlags;
/// `VkBufferUsageFlags`.
pub type VkBufferUsageFlags = vk::BufferUsageFlags;
/// `VkAccessFlags`.
pub type VkAccessFlags = vk::AccessFlags;
/// `VkPipelineStageFlags`.
pub type VkPipelineStageFlags = vk::PipelineStageFlags;
/// `VkExternalMemoryHandleTypeFlagBits` (one bit).
pub type VkExternalMemoryHandleTypeFlagBits = vk::ExternalMemoryHandleTypeFlags;
/// `VkBool32`.
pub type VkBool32 = u32;
/// `PFN_vkGetInstanceProcAddr` (NULL is refused).
pub type PFN_vkGetInstanceProcAddr = Option<vk::PFN_vkGetInstanceProcAddr>;
