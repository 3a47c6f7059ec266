//! <https://registry.khronos.org/vulkan/specs/latest/man/html/VK_NV_dedicated_allocation.html>
//!
//! VK_NV_dedicated_allocation (device extension #27, spec version 1) on top of core 1.1 /
//! VK_KHR_dedicated_allocation, where the driver lacks it: `VkDedicatedAllocation{Image,Buffer}
//! CreateInfoNV` leave the creation chain and are remembered for that object, and
//! `VkDedicatedAllocationMemoryAllocateInfoNV` becomes `VkMemoryDedicatedAllocateInfo`.
//!
//! The extension's valid usage is checked before the driver (it cannot be checked after the
//! translation): VUID-VkDedicatedAllocationMemoryAllocateInfoNV-image-00649 (not both handles),
//! -image-00650 / -buffer-00651 (the resource was created dedicated), -image-00652 /
//! -buffer-00653 (`allocationSize` is the resource's size), and at bind time
//! VUID-vkBindImageMemory-image-01050 / VUID-vkBindBufferMemory-buffer-01038 (a dedicated
//! resource is bound at offset 0 to memory dedicated to it) and -apiVersion-07921 / -07920
//! (memory dedicated to one resource is bound to no other). -image-00654 / -buffer-00655
//! (an import must be of memory dedicated to an identical resource) speak of the exporting
//! side, which the layer cannot see; the translated `VkMemoryDedicatedAllocateInfo` carries the
//! same rule to the driver. Only objects that carry an NV structure are tracked: every other
//! bind, destroy and free pays one relaxed load.

use crate::log::layer_error;
use ash::vk;
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

/// `VK_NV_dedicated_allocation`.
pub const NAME: &CStr = ash::nv::dedicated_allocation::NAME;

/// The extension's properties as `vkEnumerateDeviceExtensionProperties` reports them.
pub fn properties() -> vk::ExtensionProperties {
    vk::ExtensionProperties::default().extension_name(NAME).unwrap_or_default().spec_version(1)
}

/// What the layer enables below itself for a device of API version `api_version` (the
/// application's and the device's lower one): nothing from 1.1 on, where the core has it.
pub fn extensions_below(api_version: u32) -> &'static [&'static CStr] {
    if api_version >= vk::API_VERSION_1_1 {
        &[]
    } else {
        &[ash::khr::get_memory_requirements2::NAME, ash::khr::dedicated_allocation::NAME]
    }
}

/// The next element's commands the extension needs.
pub struct DedicatedFns {
    pub image_requirements: vk::PFN_vkGetImageMemoryRequirements,
    pub buffer_requirements: vk::PFN_vkGetBufferMemoryRequirements,
    pub bind_image_memory: vk::PFN_vkBindImageMemory,
    pub bind_buffer_memory: vk::PFN_vkBindBufferMemory,
    pub destroy_image: vk::PFN_vkDestroyImage,
    pub destroy_buffer: vk::PFN_vkDestroyBuffer,
    pub free_memory: vk::PFN_vkFreeMemory,
}

/// The creation parameters of a dedicated resource that "identical creation parameters"
/// (01050, 01038) compares: every member of the create info but its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Params {
    Image(
        vk::ImageCreateFlags,
        vk::ImageType,
        vk::Format,
        [u32; 5],
        vk::SampleCountFlags,
        vk::ImageTiling,
        vk::ImageUsageFlags,
        vk::SharingMode,
        Vec<u32>,
        vk::ImageLayout,
    ),
    Buffer(vk::BufferCreateFlags, u64, vk::BufferUsageFlags, vk::SharingMode, Vec<u32>),
}

/// What memory allocated with `VkDedicatedAllocationMemoryAllocateInfoNV` is dedicated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Image(vk::Image),
    Buffer(vk::Buffer),
}

/// The extension's state on one device.
pub struct Dedicated {
    pub fns: DedicatedFns,
    /// How many objects the maps hold; 0 means no call has anything to check.
    tracked: AtomicUsize,
    /// Resources created with `dedicatedAllocation = VK_TRUE`.
    resources: RwLock<HashMap<Target, Params>>,
    /// Memory allocated with the NV structure naming a resource.
    memories: RwLock<HashMap<vk::DeviceMemory, Target>>,
}

/// Reads a queue family list (null or empty: none).
///
/// # Safety
/// `p` must hold `n` values where non-null.
unsafe fn families(p: *const u32, n: u32) -> Vec<u32> {
    if p.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: per the caller.
    unsafe { std::slice::from_raw_parts(p, n as usize) }.to_vec()
}

/// The parameters of an image create info.
///
/// # Safety
/// `ci` must be valid.
pub unsafe fn image_params(ci: &vk::ImageCreateInfo) -> Params {
    let e = ci.extent;
    // SAFETY: per the caller.
    let queues = unsafe { families(ci.p_queue_family_indices, ci.queue_family_index_count) };
    let sizes = [e.width, e.height, e.depth, ci.mip_levels, ci.array_layers];
    Params::Image(
        ci.flags,
        ci.image_type,
        ci.format,
        sizes,
        ci.samples,
        ci.tiling,
        ci.usage,
        ci.sharing_mode,
        queues,
        ci.initial_layout,
    )
}

/// The parameters of a buffer create info.
///
/// # Safety
/// `ci` must be valid.
pub unsafe fn buffer_params(ci: &vk::BufferCreateInfo) -> Params {
    // SAFETY: per the caller.
    let queues = unsafe { families(ci.p_queue_family_indices, ci.queue_family_index_count) };
    Params::Buffer(ci.flags, ci.size, ci.usage, ci.sharing_mode, queues)
}

impl Dedicated {
    /// The extension's state for a device whose next element has `fns`.
    pub fn new(fns: DedicatedFns) -> Self {
        Dedicated { fns, tracked: AtomicUsize::new(0), resources: Default::default(), memories: Default::default() }
    }

    /// Whether anything is tracked: the one test untracked calls pay.
    #[inline]
    pub fn tracking(&self) -> bool {
        self.tracked.load(Ordering::Relaxed) != 0
    }

    /// Remembers a resource created with `dedicatedAllocation = VK_TRUE`.
    pub fn created(&self, handle: Target, params: Params) {
        let old = self.resources.write().unwrap_or_else(|e| e.into_inner()).insert(handle, params);
        if old.is_none() {
            self.tracked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets a destroyed resource (where tracked).
    pub fn destroyed(&self, handle: Target) {
        if self.tracking() && self.resources.write().unwrap_or_else(|e| e.into_inner()).remove(&handle).is_some() {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Forgets freed memory (where tracked).
    pub fn freed(&self, memory: vk::DeviceMemory) {
        if self.tracking() && self.memories.write().unwrap_or_else(|e| e.into_inner()).remove(&memory).is_some() {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Checks a `VkDedicatedAllocationMemoryAllocateInfoNV` against its valid usage; returns the
    /// core structure's handles.
    ///
    /// # Safety
    /// `device` must be live; the handles in `nv` valid or null per its implicit valid usage.
    pub unsafe fn check_allocation(
        &self,
        device: vk::Device,
        nv: &vk::DedicatedAllocationMemoryAllocateInfoNV,
        allocation_size: u64,
    ) -> Result<(), vk::Result> {
        let (image, buffer) = (nv.image, nv.buffer);
        if image != vk::Image::null() && buffer != vk::Buffer::null() {
            return refuse("vkAllocateMemory: both image and buffer given (VUID-VkDedicatedAllocationMemoryAllocateInfoNV-image-00649)");
        }
        let resources = self.resources.read().unwrap_or_else(|e| e.into_inner());
        if image != vk::Image::null() {
            if !matches!(resources.get(&Target::Image(image)), Some(Params::Image(..))) {
                return refuse("vkAllocateMemory: the image was not created with VkDedicatedAllocationImageCreateInfoNV::dedicatedAllocation VK_TRUE (VUID-VkDedicatedAllocationMemoryAllocateInfoNV-image-00650)");
            }
            let mut r = vk::MemoryRequirements::default();
            // SAFETY: a live image of this device.
            unsafe { (self.fns.image_requirements)(device, image, &mut r) };
            if allocation_size != r.size {
                layer_error!("vkAllocateMemory: allocationSize {allocation_size} is not the image's size {} (VUID-VkDedicatedAllocationMemoryAllocateInfoNV-image-00652)", r.size);
                return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
            }
        }
        if buffer != vk::Buffer::null() {
            if !matches!(resources.get(&Target::Buffer(buffer)), Some(Params::Buffer(..))) {
                return refuse("vkAllocateMemory: the buffer was not created with VkDedicatedAllocationBufferCreateInfoNV::dedicatedAllocation VK_TRUE (VUID-VkDedicatedAllocationMemoryAllocateInfoNV-buffer-00651)");
            }
            let mut r = vk::MemoryRequirements::default();
            // SAFETY: a live buffer of this device.
            unsafe { (self.fns.buffer_requirements)(device, buffer, &mut r) };
            if allocation_size != r.size {
                layer_error!("vkAllocateMemory: allocationSize {allocation_size} is not the buffer's size {} (VUID-VkDedicatedAllocationMemoryAllocateInfoNV-buffer-00653)", r.size);
                return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
            }
        }
        Ok(())
    }

    /// Remembers memory allocated with the NV structure naming a resource.
    pub fn allocated(&self, memory: vk::DeviceMemory, nv: &vk::DedicatedAllocationMemoryAllocateInfoNV) {
        let target = if nv.image != vk::Image::null() {
            Target::Image(nv.image)
        } else if nv.buffer != vk::Buffer::null() {
            Target::Buffer(nv.buffer)
        } else {
            return;
        };
        if self.memories.write().unwrap_or_else(|e| e.into_inner()).insert(memory, target).is_none() {
            self.tracked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Checks binding `image` to `memory` at `offset` (01050, 07921).
    pub fn check_image_bind(&self, image: vk::Image, memory: vk::DeviceMemory, offset: u64) -> Result<(), vk::Result> {
        self.check_bind(Target::Image(image), memory, offset, "vkBindImageMemory", "image-01050", "apiVersion-07921")
    }

    /// Checks binding `buffer` to `memory` at `offset` (01038, 07920).
    pub fn check_buffer_bind(
        &self,
        buffer: vk::Buffer,
        memory: vk::DeviceMemory,
        offset: u64,
    ) -> Result<(), vk::Result> {
        self.check_bind(
            Target::Buffer(buffer),
            memory,
            offset,
            "vkBindBufferMemory",
            "buffer-01038",
            "apiVersion-07920",
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn check_bind(
        &self,
        this: Target,
        memory: vk::DeviceMemory,
        offset: u64,
        command: &str,
        dedicated_vuid: &str,
        other_vuid: &str,
    ) -> Result<(), vk::Result> {
        let resources = self.resources.read().unwrap_or_else(|e| e.into_inner());
        let memories = self.memories.read().unwrap_or_else(|e| e.into_inner());
        let target = memories.get(&memory).copied();
        match (resources.get(&this), target) {
            (None, None) => Ok(()),
            (None, Some(_)) => {
                layer_error!("{command}: the memory is dedicated to another resource, and this one was not created dedicated (VUID-{command}-{other_vuid})");
                Err(vk::Result::ERROR_VALIDATION_FAILED_EXT)
            }
            (Some(params), target) => {
                let dedicated_to_it = match target {
                    Some(t) if t == this => true,
                    // "an image handle created with identical creation parameters"
                    Some(other) => resources.get(&other) == Some(params),
                    None => false,
                };
                if !dedicated_to_it || offset != 0 {
                    layer_error!("{command}: a resource created with dedicatedAllocation VK_TRUE must be bound at offset 0 (here {offset}) to memory allocated for it with VkDedicatedAllocationMemoryAllocateInfoNV (dedicated to it: {dedicated_to_it}) (VUID-{command}-{dedicated_vuid})");
                    return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
                }
                Ok(())
            }
        }
    }
}

fn refuse(message: &str) -> Result<(), vk::Result> {
    layer_error!("{message}");
    Err(vk::Result::ERROR_VALIDATION_FAILED_EXT)
}
