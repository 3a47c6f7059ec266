//! Marking the buffers and images of a VK_NV_external_memory device external.
//!
//! The NV valid-usage rules let an application bind memory allocated with
//! `VkExportMemoryAllocateInfoNV` to any buffer, and to an image created without
//! `VkExternalMemoryImageCreateInfoNV`; after translation that memory is core exportable memory,
//! and core Vulkan requires the resource to name the handle type
//! (VUID-vkBindBufferMemory-memory-02726, VUID-vkBindImageMemory-memory-02728). The layer cannot
//! know at creation how a resource will be bound, and marking a resource OPAQUE_FD changes none
//! of its memory requirements on the drivers measured (`examples/external_requirements.rs`), so
//! every buffer and image the driver accepts as exportable is created with the core structure.
//! Not marked: resources that already carry one, images with a `PREINITIALIZED` layout
//! (VUID-VkImageCreateInfo-pNext-01443), DRM-modifier tiling, swapchain-bound images, and
//! anything the driver's external query refuses or limits below the create info.

use crate::handle_types::MARK;
use crate::pnext;
use ash::vk;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// The external-memory queries of one physical device, for the layer's own questions.
#[derive(Clone, Copy)]
pub struct PhysicalDeviceQueries {
    pub physical_device: vk::PhysicalDevice,
    pub image_format_properties2: Option<vk::PFN_vkGetPhysicalDeviceImageFormatProperties2>,
    pub external_buffer_properties: Option<vk::PFN_vkGetPhysicalDeviceExternalBufferProperties>,
}

/// Answers of the driver's external queries, learnt once per combination.
pub struct Marking {
    queries: PhysicalDeviceQueries,
    buffers: Mutex<HashMap<(vk::BufferUsageFlags, vk::BufferCreateFlags), bool>>,
    #[allow(clippy::type_complexity)]
    images: Mutex<HashMap<ImageKey, Option<vk::ImageFormatProperties>>>,
}

type ImageKey = (vk::Format, vk::ImageType, vk::ImageTiling, vk::ImageUsageFlags, vk::ImageCreateFlags);

impl Marking {
    /// Marking for the device made from `queries.physical_device`.
    pub fn new(queries: PhysicalDeviceQueries) -> Self {
        Marking { queries, buffers: Default::default(), images: Default::default() }
    }

    /// Whether a buffer created from `ci` gets [`MARK`].
    ///
    /// # Safety
    /// `ci` must be a valid create info.
    pub unsafe fn buffer(&self, ci: &vk::BufferCreateInfo) -> bool {
        // SAFETY: the application's chain is valid.
        if unsafe { pnext::find::<vk::ExternalMemoryBufferCreateInfo>(ci.p_next) }.is_some() {
            return false;
        }
        let Some(query) = self.queries.external_buffer_properties else { return false };
        let key = (ci.usage, ci.flags);
        let mut cache = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        *cache.entry(key).or_insert_with(|| {
            let info =
                vk::PhysicalDeviceExternalBufferInfo::default().usage(ci.usage).flags(ci.flags).handle_type(MARK);
            let mut out = vk::ExternalBufferProperties::default();
            // SAFETY: valid handle and structures built here.
            unsafe { query(self.queries.physical_device, &info, &mut out) };
            exportable(&out.external_memory_properties)
        })
    }

    /// Whether an image created from `ci` (whose chain holds no external-memory structure
    /// with handle types) gets [`MARK`].
    ///
    /// # Safety
    /// `ci` must be a valid create info.
    pub unsafe fn image(&self, ci: &vk::ImageCreateInfo) -> bool {
        // SAFETY: the application's chain is valid.
        let swapchain = unsafe { pnext::find::<vk::ImageSwapchainCreateInfoKHR>(ci.p_next) }.is_some();
        // SAFETY: as above.
        let core = unsafe { pnext::find::<vk::ExternalMemoryImageCreateInfo>(ci.p_next) }.is_some();
        if core
            || swapchain
            || ci.initial_layout != vk::ImageLayout::UNDEFINED
            || ci.tiling == vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT
        {
            return false;
        }
        let Some(query) = self.queries.image_format_properties2 else { return false };
        let key = (ci.format, ci.image_type, ci.tiling, ci.usage, ci.flags);
        let limits = *self.images.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert_with(|| {
            let mut external_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(MARK);
            let info = vk::PhysicalDeviceImageFormatInfo2::default()
                .format(ci.format)
                .ty(ci.image_type)
                .tiling(ci.tiling)
                .usage(ci.usage)
                .flags(ci.flags)
                .push_next(&mut external_info);
            let mut external = vk::ExternalImageFormatProperties::default();
            let mut props = vk::ImageFormatProperties2::default().push_next(&mut external);
            // SAFETY: valid handle; chains built here.
            let r = unsafe { query(self.queries.physical_device, &info, &mut props) };
            let limits = props.image_format_properties;
            (r == vk::Result::SUCCESS && exportable(&external.external_memory_properties)).then_some(limits)
        });
        limits.is_some_and(|l| within(ci, &l))
    }
}

/// Calls `call` with a buffer create info as the layer passes it down (marked where it can be).
///
/// # Safety
/// `ci` must be a valid create info.
pub unsafe fn buffer_info_down<R>(
    marking: &Marking,
    ci: &vk::BufferCreateInfo,
    call: impl FnOnce(&vk::BufferCreateInfo) -> R,
) -> R {
    // SAFETY: a valid create info.
    if !unsafe { marking.buffer(ci) } {
        return call(ci);
    }
    // The core structure goes in front; the application's chain is shared as it is.
    let mut external =
        vk::ExternalMemoryBufferCreateInfo { p_next: ci.p_next, ..Default::default() }.handle_types(MARK);
    let mut down = *ci;
    down.p_next = &mut external as *mut _ as *const c_void;
    call(&down)
}

/// The driver can export the handle type and lists it as compatible with itself.
fn exportable(p: &vk::ExternalMemoryProperties) -> bool {
    p.external_memory_features.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE)
        && p.compatible_handle_types.contains(MARK)
}

/// The image fits the limits the external query gave (VUID-VkImageCreateInfo-extent-02252 and
/// its siblings are checked against them).
fn within(ci: &vk::ImageCreateInfo, l: &vk::ImageFormatProperties) -> bool {
    ci.extent.width <= l.max_extent.width
        && ci.extent.height <= l.max_extent.height
        && ci.extent.depth <= l.max_extent.depth
        && ci.mip_levels <= l.max_mip_levels
        && ci.array_layers <= l.max_array_layers
        && l.sample_counts.contains(ci.samples)
}
