//! Marking the buffers and images of a VK_NV_external_memory device external.
//!
//! The NV valid-usage rules let an application bind memory allocated with
//! `VkExportMemoryAllocateInfoNV` to any buffer, and to an image created without
//! `VkExternalMemoryImageCreateInfoNV`; after translation that memory is core exportable memory,
//! and core Vulkan requires the resource to name the handle type
//! (VUID-vkBindBufferMemory-memory-02726, VUID-vkBindImageMemory-memory-02728). The layer cannot
//! know at creation how a resource will be bound. Marking a resource OPAQUE_FD changes none of
//! its memory requirements on lavapipe, but NVIDIA's driver drops its host-visible device-local
//! memory type from every marked buffer and LINEAR image (`examples/external_requirements.rs`).
//! So a kind of resource is marked only where the driver accepts it as exportable AND its
//! memory requirements marked equal those unmarked, asked once per kind: through
//! `vkGetDevice{Buffer,Image}MemoryRequirements` where the device has them (Vulkan 1.3, or
//! VK_KHR_maintenance4, which the layer enables below itself for 1.1 and 1.2 applications
//! where the device has it), else by creating one unbound buffer or image each way below the
//! layer and asking `vkGet{Buffer,Image}MemoryRequirements` (1.0 applications: the extension
//! needs 1.1). An application never sees a requirement change because of the layer.
//! Not marked: resources that already carry one, images with a `PREINITIALIZED` layout
//! (VUID-VkImageCreateInfo-pNext-01443), DRM-modifier tiling, swapchain-bound images, anything
//! the driver's external query refuses or limits below the create info, and kinds whose
//! requirements marking would change.

use crate::handle_types::MARK;
use crate::once_table::{self, FlagTable, OnceTable};
use crate::pnext;
use ash::vk;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering};

/// The external-memory queries of one physical device, for the layer's own questions.
#[derive(Clone, Copy)]
pub struct PhysicalDeviceQueries {
    pub physical_device: vk::PhysicalDevice,
    pub image_format_properties2: Option<vk::PFN_vkGetPhysicalDeviceImageFormatProperties2>,
    pub external_buffer_properties: Option<vk::PFN_vkGetPhysicalDeviceExternalBufferProperties>,
}

/// The device's requirement queries that need no object (core 1.3 or VK_KHR_maintenance4).
#[derive(Clone, Copy)]
pub struct RequirementQueries {
    pub device: vk::Device,
    pub buffer: Option<vk::PFN_vkGetDeviceBufferMemoryRequirements>,
    pub image: Option<vk::PFN_vkGetDeviceImageMemoryRequirements>,
    /// Where a query above is absent: the commands to ask a throw-away object.
    pub throw_away: Option<ThrowAway>,
}

/// The next element's commands for asking the requirements of a resource created only for
/// the question (core 1.0: every device has them).
#[derive(Clone, Copy)]
pub struct ThrowAway {
    pub create_buffer: vk::PFN_vkCreateBuffer,
    pub destroy_buffer: vk::PFN_vkDestroyBuffer,
    pub buffer_requirements: vk::PFN_vkGetBufferMemoryRequirements,
    pub create_image: vk::PFN_vkCreateImage,
    pub destroy_image: vk::PFN_vkDestroyImage,
    pub image_requirements: vk::PFN_vkGetImageMemoryRequirements,
}

impl ThrowAway {
    /// The requirements of a buffer created from `ci` below the layer, then destroyed.
    ///
    /// # Safety
    /// `device` must be live; `ci` a valid create info.
    unsafe fn buffer(&self, device: vk::Device, ci: &vk::BufferCreateInfo) -> Option<vk::MemoryRequirements> {
        let mut buffer = vk::Buffer::null();
        // SAFETY: valid arguments; the buffer is destroyed before returning.
        unsafe {
            if (self.create_buffer)(device, ci, std::ptr::null(), &mut buffer) != vk::Result::SUCCESS {
                return None;
            }
            let mut r = vk::MemoryRequirements::default();
            (self.buffer_requirements)(device, buffer, &mut r);
            (self.destroy_buffer)(device, buffer, std::ptr::null());
            Some(r)
        }
    }

    /// The requirements of an image created from `ci` below the layer, then destroyed.
    ///
    /// # Safety
    /// `device` must be live; `ci` a valid create info.
    unsafe fn image(&self, device: vk::Device, ci: &vk::ImageCreateInfo) -> Option<vk::MemoryRequirements> {
        let mut image = vk::Image::null();
        // SAFETY: valid arguments; the image is destroyed before returning.
        unsafe {
            if (self.create_image)(device, ci, std::ptr::null(), &mut image) != vk::Result::SUCCESS {
                return None;
            }
            let mut r = vk::MemoryRequirements::default();
            (self.image_requirements)(device, image, &mut r);
            (self.destroy_image)(device, image, std::ptr::null());
            Some(r)
        }
    }
}

/// Answers of the driver's external queries, learnt once per combination.
pub struct Marking {
    queries: PhysicalDeviceQueries,
    requirements: RequirementQueries,
    /// Keyed by (usage, flags); read and filled without a lock.
    buffers: FlagTable,
    /// Keyed by (format, type, tiling, usage, flags).
    images: OnceTable<[u32; 5], ImageAnswer>,
}

/// What the driver said about one kind of image: the limits of its external query (`None`
/// where it refused), and whether marking leaves the requirements as they are (asked once,
/// for the first image of the kind within those limits: [`UNKNOWN`] until then). One entry,
/// so one lookup per `vkCreateImage`.
struct ImageAnswer {
    limits: Option<vk::ImageFormatProperties>,
    unchanged: AtomicU8,
}

const UNKNOWN: u8 = 0;
const CHANGED: u8 = 1;
const UNCHANGED: u8 = 2;

impl Marking {
    /// Marking for the device made from `queries.physical_device`.
    pub fn new(queries: PhysicalDeviceQueries, requirements: RequirementQueries) -> Self {
        Marking { queries, requirements, buffers: FlagTable::default(), images: OnceTable::default() }
    }

    /// The device's requirement queries (`None` where it has not got them).
    pub fn requirement_queries(&self) -> &RequirementQueries {
        &self.requirements
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
        let key = u64::from(ci.usage.as_raw()) | u64::from(ci.flags.as_raw()) << 32;
        let make = || {
            let info =
                vk::PhysicalDeviceExternalBufferInfo::default().usage(ci.usage).flags(ci.flags).handle_type(MARK);
            let mut out = vk::ExternalBufferProperties::default();
            // SAFETY: valid handle and structures built here.
            unsafe { query(self.queries.physical_device, &info, &mut out) };
            // SAFETY: a valid create info.
            exportable(&out.external_memory_properties) && unsafe { self.buffer_unchanged(ci) }
        };
        self.buffers.get_or_insert_with(key, make)
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
        let key = [
            ci.format.as_raw() as u32,
            ci.image_type.as_raw() as u32,
            ci.tiling.as_raw() as u32,
            ci.usage.as_raw(),
            ci.flags.as_raw(),
        ];
        let make = || {
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
            let limits =
                (r == vk::Result::SUCCESS && exportable(&external.external_memory_properties)).then_some(limits);
            ImageAnswer { limits, unchanged: AtomicU8::new(UNKNOWN) }
        };
        self.images.get_or_insert_with(key, once_table::hash(&key), make, |answer| {
            if !answer.limits.is_some_and(|l| within(ci, &l)) {
                return false;
            }
            match answer.unchanged.load(Ordering::Relaxed) {
                UNKNOWN => {
                    // SAFETY: a valid create info, within the external limits. Two threads may
                    // both ask; the driver gives both the same answer.
                    let unchanged = unsafe { self.image_unchanged(ci) };
                    answer.unchanged.store(if unchanged { UNCHANGED } else { CHANGED }, Ordering::Relaxed);
                    unchanged
                }
                known => known == UNCHANGED,
            }
        })
    }

    /// Whether marking leaves a buffer's memory requirements as they are.
    ///
    /// # Safety
    /// `ci` must be a valid create info.
    unsafe fn buffer_unchanged(&self, ci: &vk::BufferCreateInfo) -> bool {
        let Some(query) = self.requirements.buffer else {
            let Some(t) = self.requirements.throw_away else { return false };
            let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(MARK);
            let plain = vk::BufferCreateInfo { p_next: std::ptr::null(), ..*ci };
            let marked = vk::BufferCreateInfo { p_next: &mut external as *mut _ as *const c_void, ..*ci };
            let device = self.requirements.device;
            // SAFETY: a live device; create infos built here.
            let (a, b) = unsafe { (t.buffer(device, &plain), t.buffer(device, &marked)) };
            return a.is_some() && same(a, b);
        };
        let ask = |marked: bool| {
            let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(MARK);
            // The application's chain stays out: the same question asked both ways.
            let mut ci = vk::BufferCreateInfo { p_next: std::ptr::null(), ..*ci };
            if marked {
                ci.p_next = &mut external as *mut _ as *const c_void;
            }
            let info = vk::DeviceBufferMemoryRequirements::default().create_info(&ci);
            let mut dedicated = vk::MemoryDedicatedRequirements::default();
            let mut out = vk::MemoryRequirements2::default().push_next(&mut dedicated);
            // SAFETY: a live device; structures built here.
            unsafe { query(self.requirements.device, &info, &mut out) };
            requirements(&out.memory_requirements, &dedicated)
        };
        ask(false) == ask(true)
    }

    /// Whether marking leaves an image's memory requirements as they are.
    ///
    /// # Safety
    /// `ci` must be a valid create info that the external query admits.
    unsafe fn image_unchanged(&self, ci: &vk::ImageCreateInfo) -> bool {
        let Some(query) = self.requirements.image else {
            let Some(t) = self.requirements.throw_away else { return false };
            let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(MARK);
            let plain = vk::ImageCreateInfo { p_next: std::ptr::null(), ..*ci };
            let marked = vk::ImageCreateInfo { p_next: &mut external as *mut _ as *const c_void, ..*ci };
            let device = self.requirements.device;
            // SAFETY: a live device; create infos built here, within the external limits.
            let (a, b) = unsafe { (t.image(device, &plain), t.image(device, &marked)) };
            return a.is_some() && same(a, b);
        };
        let ask = |marked: bool| {
            let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(MARK);
            let mut ci = vk::ImageCreateInfo { p_next: std::ptr::null(), ..*ci };
            if marked {
                ci.p_next = &mut external as *mut _ as *const c_void;
            }
            let info = vk::DeviceImageMemoryRequirements::default().create_info(&ci);
            let mut dedicated = vk::MemoryDedicatedRequirements::default();
            let mut out = vk::MemoryRequirements2::default().push_next(&mut dedicated);
            // SAFETY: a live device; structures built here (no plane aspect: not disjoint).
            unsafe { query(self.requirements.device, &info, &mut out) };
            requirements(&out.memory_requirements, &dedicated)
        };
        ask(false) == ask(true)
    }
}

/// Whether two answers of `vkGet*MemoryRequirements` agree.
fn same(a: Option<vk::MemoryRequirements>, b: Option<vk::MemoryRequirements>) -> bool {
    let key = |r: Option<vk::MemoryRequirements>| r.map(|r| (r.size, r.alignment, r.memory_type_bits));
    key(a) == key(b)
}

/// What an application sees of a resource's needs: size, alignment, memory types, dedication.
fn requirements(r: &vk::MemoryRequirements, d: &vk::MemoryDedicatedRequirements) -> (u64, u64, u32, u32, u32) {
    (r.size, r.alignment, r.memory_type_bits, d.prefers_dedicated_allocation, d.requires_dedicated_allocation)
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

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "system" fn exportable_buffers(
        _: vk::PhysicalDevice,
        _: *const vk::PhysicalDeviceExternalBufferInfo<'_>,
        out: *mut vk::ExternalBufferProperties<'_>,
    ) {
        // SAFETY: the caller passes a valid output structure.
        let p = unsafe { &mut (*out).external_memory_properties };
        p.external_memory_features = vk::ExternalMemoryFeatureFlags::EXPORTABLE;
        p.compatible_handle_types = MARK;
    }

    /// NVIDIA's answer (driver 580): the marked buffer loses memory type 4.
    unsafe extern "system" fn marking_drops_a_type(
        _: vk::Device,
        info: *const vk::DeviceBufferMemoryRequirements<'_>,
        out: *mut vk::MemoryRequirements2<'_>,
    ) {
        // SAFETY: valid structures from the caller.
        let marked = unsafe { !(*(*info).p_create_info).p_next.is_null() };
        // SAFETY: as above.
        let r = unsafe { &mut (*out).memory_requirements };
        *r = vk::MemoryRequirements { size: 4096, alignment: 16, memory_type_bits: if marked { 0xf } else { 0x1f } };
    }

    /// lavapipe's answer: the same either way.
    unsafe extern "system" fn marking_changes_nothing(
        _: vk::Device,
        _: *const vk::DeviceBufferMemoryRequirements<'_>,
        out: *mut vk::MemoryRequirements2<'_>,
    ) {
        // SAFETY: a valid output structure from the caller.
        unsafe {
            (*out).memory_requirements = vk::MemoryRequirements { size: 4096, alignment: 16, memory_type_bits: 1 }
        };
    }

    fn marking(buffer: Option<vk::PFN_vkGetDeviceBufferMemoryRequirements>) -> Marking {
        Marking::new(
            PhysicalDeviceQueries {
                physical_device: vk::PhysicalDevice::null(),
                image_format_properties2: None,
                external_buffer_properties: Some(exportable_buffers),
            },
            RequirementQueries { device: vk::Device::null(), buffer, image: None, throw_away: None },
        )
    }

    #[test]
    fn a_buffer_is_marked_only_where_marking_changes_no_requirement() {
        let ci = vk::BufferCreateInfo::default().size(4096).usage(vk::BufferUsageFlags::STORAGE_BUFFER);
        // SAFETY: a valid create info; the fakes above stand for the driver.
        unsafe {
            assert!(marking(Some(marking_changes_nothing)).buffer(&ci));
            assert!(!marking(Some(marking_drops_a_type)).buffer(&ci));
            assert!(!marking(None).buffer(&ci), "marked without a way to check the requirements");
        }
    }
}
