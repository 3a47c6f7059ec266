//! <https://registry.khronos.org/vulkan/specs/latest/man/html/VK_NV_external_memory.html>
//!
//! VK_NV_external_memory (device extension #57, spec version 1) on top of core 1.1 /
//! VK_KHR_external_memory: `VkExternalMemoryImageCreateInfoNV` and
//! `VkExportMemoryAllocateInfoNV` become their core equivalents with translated handle types.

use crate::dispatch::{InstanceData, NvDeviceFns, PhysicalDeviceInfo};
use crate::enumerate;
use crate::handle_types::{self, BACKING_EXTENSION, MARK};
use crate::log::{layer_error, layer_log};
use crate::pnext::{self, ChainWithout};
use crate::settings::Settings;
use ash::vk;
use std::ffi::{c_char, c_void, CStr};

/// `VK_NV_external_memory`.
pub const NAME: &CStr = ash::nv::external_memory::NAME;

/// The extension's properties as `vkEnumerateDeviceExtensionProperties` reports them.
pub fn properties() -> vk::ExtensionProperties {
    vk::ExtensionProperties::default().extension_name(NAME).unwrap_or_default().spec_version(1)
}

/// Learns what a physical device can do for the extension (once per device).
///
/// # Safety
/// `physical_device` must belong to `inst`.
pub unsafe fn probe(inst: &InstanceData, physical_device: vk::PhysicalDevice) -> PhysicalDeviceInfo {
    if let Some(info) = inst.physical_devices.lock().unwrap_or_else(|e| e.into_inner()).get(&physical_device) {
        return *info;
    }
    let mut props = vk::PhysicalDeviceProperties::default();
    // SAFETY: valid handle and output.
    unsafe { (inst.fns.get_physical_device_properties)(physical_device, &mut props) };
    let enumerate = inst.fns.enumerate_device_extension_properties;
    // SAFETY: the next element's command on a valid handle.
    let extensions =
        unsafe { enumerate::two_call(|n, p| enumerate(physical_device, std::ptr::null(), n, p)) }.unwrap_or_default();
    let has = |name: &CStr| extensions.iter().any(|e| e.extension_name_as_c_str() == Ok(name));
    let core_1_1 = props.api_version >= vk::API_VERSION_1_1;
    let nv_native = has(NAME);
    let nv_backed = (core_1_1 || has(ash::khr::external_memory::NAME))
        && has(BACKING_EXTENSION)
        && unsafe { exports_common_image(inst, physical_device) };
    let dedicated_backed =
        core_1_1 || (has(ash::khr::dedicated_allocation::NAME) && has(ash::khr::get_memory_requirements2::NAME));
    let info = PhysicalDeviceInfo {
        api_version: props.api_version,
        nv_native,
        nv_backed,
        maintenance4: has(ash::khr::maintenance4::NAME),
        dedicated_native: has(crate::ext::nv_dedicated_allocation::NAME),
        dedicated_backed,
    };
    layer_log!("physical device {:?} ({:?}): {info:?}", physical_device, props.device_name_as_c_str());
    inst.physical_devices.lock().unwrap_or_else(|e| e.into_inner()).insert(physical_device, info);
    info
}

/// Whether an RGBA8 optimal-tiling sampled image can be exported with the backing handle type.
/// Without the query (1.0 instance without properties2) the extension list is trusted.
///
/// # Safety
/// `physical_device` must belong to `inst`.
unsafe fn exports_common_image(inst: &InstanceData, physical_device: vk::PhysicalDevice) -> bool {
    let Some(query2) = inst.fns.get_physical_device_image_format_properties2 else {
        return true;
    };
    let Some(handle_type) = handle_types::nv_to_khr(vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32) else {
        return false;
    };
    let mut external_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(handle_type);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(vk::Format::R8G8B8A8_UNORM)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST)
        .push_next(&mut external_info);
    let mut external = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external);
    // SAFETY: valid handle; chains built here.
    let r = unsafe { query2(physical_device, &info, &mut props) };
    r == vk::Result::SUCCESS
        && external
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE)
}

/// The device extensions to pass down for an application that enabled `app`: the NV name
/// replaced by the KHR extensions behind it. `Ok(None)` means: pass through untouched.
pub fn device_extensions_down<'a>(
    app: &[&'a CStr],
    api_version: u32,
    info: PhysicalDeviceInfo,
    settings: &Settings,
) -> Result<Option<Vec<&'a CStr>>, vk::Result> {
    let native = info.nv_native && !settings.force_on;
    if !settings.active() || native || !app.contains(&NAME) {
        return Ok(None);
    }
    if !info.nv_backed {
        layer_error!("vkCreateDevice: VK_NV_external_memory asked for, but the driver cannot back it");
        return Err(vk::Result::ERROR_EXTENSION_NOT_PRESENT);
    }
    let mut down: Vec<&CStr> = app.iter().copied().filter(|&n| n != NAME).collect();
    let mut needed = vec![BACKING_EXTENSION];
    if api_version < vk::API_VERSION_1_1 {
        needed.push(ash::khr::external_memory::NAME);
    }
    for ext in needed {
        if !down.contains(&ext) {
            down.push(ext);
        }
    }
    Ok(Some(down))
}

/// `vkEnumerateDeviceExtensionProperties`: the driver's list, plus the NV extension where the
/// layer implements it; only the NV extension when `pLayerName` names this layer.
///
/// # Safety
/// Arguments as the command takes them; `physical_device` must belong to `inst`.
pub unsafe fn enumerate_device_extension_properties(
    inst: &InstanceData,
    physical_device: vk::PhysicalDevice,
    layer_name: *const c_char,
    count: *mut u32,
    out: *mut vk::ExtensionProperties,
) -> vk::Result {
    let enumerate = inst.fns.enumerate_device_extension_properties;
    // SAFETY: as the caller promised.
    let info = unsafe { probe(inst, physical_device) };
    let mut ours = Vec::new();
    if info.implemented(&inst.settings) {
        ours.push(properties());
    }
    if info.dedicated_implemented(&inst.settings) {
        ours.push(crate::ext::nv_dedicated_allocation::properties());
    }
    if !layer_name.is_null() {
        // SAFETY: a non-null layer name is a valid string.
        if unsafe { CStr::from_ptr(layer_name) } == crate::LAYER_NAME {
            // SAFETY: forwarded.
            return unsafe { enumerate::answer(&ours, count, out) };
        }
        // SAFETY: another layer's question goes down untouched.
        return unsafe { enumerate(physical_device, layer_name, count, out) };
    }
    if ours.is_empty() {
        // SAFETY: forwarded untouched.
        return unsafe { enumerate(physical_device, layer_name, count, out) };
    }
    // SAFETY: the next element's command on a valid handle.
    let mut list = match unsafe { enumerate::two_call(|n, p| enumerate(physical_device, std::ptr::null(), n, p)) } {
        Ok(list) => list,
        Err(e) => return e,
    };
    // Where the driver has an extension itself (`force_on`), it is listed once.
    for p in ours {
        if !list.iter().any(|e| e.extension_name_as_c_str() == p.extension_name_as_c_str()) {
            list.push(p);
        }
    }
    // SAFETY: forwarded.
    unsafe { enumerate::answer(&list, count, out) }
}

/// Calls `call` with an image create info as the layer passes it down: the NV structure
/// translated, or the core one put in front where the image is marked external. Refuses
/// invalid NV usage with `VK_ERROR_VALIDATION_FAILED_EXT` before `call`.
///
/// # Safety
/// `ci` must be a valid create info.
pub unsafe fn image_info_down<R>(
    nv: &NvDeviceFns,
    ci: &vk::ImageCreateInfo,
    call: impl FnOnce(&vk::ImageCreateInfo) -> R,
) -> Result<R, vk::Result> {
    // VK_NV_dedicated_allocation: its structure leaves the chain first.
    if nv.dedicated.is_some() {
        // SAFETY: the application's chain is valid.
        if let Some(node) = unsafe { pnext::find::<vk::DedicatedAllocationImageCreateInfoNV>(ci.p_next) } {
            // SAFETY: the node is in the chain, which outlives the call.
            if let Some(rest) = unsafe { ChainWithout::new(ci.p_next, node as *const _ as *const _) } {
                let down = vk::ImageCreateInfo { p_next: rest.head(), ..*ci };
                // SAFETY: a valid create info whose chain lives as long as `rest`.
                return unsafe { external_image_info_down(nv, &down, call) };
            }
        }
    }
    // SAFETY: forwarded.
    unsafe { external_image_info_down(nv, ci, call) }
}

/// [`image_info_down`] for VK_NV_external_memory alone.
///
/// # Safety
/// `ci` must be a valid create info.
unsafe fn external_image_info_down<R>(
    nv: &NvDeviceFns,
    ci: &vk::ImageCreateInfo,
    call: impl FnOnce(&vk::ImageCreateInfo) -> R,
) -> Result<R, vk::Result> {
    let Some(marking) = nv.marking.as_ref() else { return Ok(call(ci)) };
    // SAFETY: the application's chain is valid.
    let Some(nv_info) = (unsafe { pnext::find::<vk::ExternalMemoryImageCreateInfoNV>(ci.p_next) }) else {
        // SAFETY: a valid create info.
        if !unsafe { marking.image(ci) } {
            return Ok(call(ci));
        }
        // The core structure goes in front; the application's chain is shared as it is.
        let mut external =
            vk::ExternalMemoryImageCreateInfo { p_next: ci.p_next, ..Default::default() }.handle_types(MARK);
        let mut down = *ci;
        down.p_next = &mut external as *mut _ as *const c_void;
        return Ok(call(&down));
    };
    // VUID-VkImageCreateInfo-pNext-00988: not both the NV and the core structure.
    if unsafe { pnext::find::<vk::ExternalMemoryImageCreateInfo>(ci.p_next) }.is_some() {
        layer_error!("vkCreateImage: VkExternalMemoryImageCreateInfoNV together with VkExternalMemoryImageCreateInfo (VUID-VkImageCreateInfo-pNext-00988)");
        return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
    }
    let Some(handle_types) = handle_types::nv_to_khr(nv_info.handle_types) else {
        layer_error!(
            "vkCreateImage: handle types {:?} cannot be backed here (VUID-VkImageCreateInfo-pNext-00991)",
            nv_info.handle_types
        );
        return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
    };
    // An NV structure with no handle types asks for an ordinary image, which is marked like one.
    // SAFETY: a valid create info.
    let handle_types = if handle_types.is_empty() && unsafe { marking.image(ci) } { MARK } else { handle_types };
    let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(handle_types);
    // SAFETY: the NV node is in the application's chain.
    Ok(unsafe {
        with_replaced(ci.p_next, nv_info as *const _ as *const _, &mut external, handle_types.is_empty(), |p_next| {
            let mut down = *ci;
            down.p_next = p_next;
            call(&down)
        })
    })
}

/// Calls `call` with an allocate info as the layer passes it down: `VkExportMemoryAllocateInfoNV`
/// translated where VK_NV_external_memory is implemented. Refuses invalid NV usage with
/// `VK_ERROR_VALIDATION_FAILED_EXT` before `call`.
///
/// # Safety
/// `ai` must be a valid allocate info.
pub unsafe fn memory_info_down<R>(
    nv: &NvDeviceFns,
    ai: &vk::MemoryAllocateInfo,
    call: impl FnOnce(&vk::MemoryAllocateInfo) -> R,
) -> Result<R, vk::Result> {
    // SAFETY: the application's chain is valid.
    let nv_info = unsafe { pnext::find::<vk::ExportMemoryAllocateInfoNV>(ai.p_next) };
    let Some(nv_info) = nv_info.filter(|_| nv.marking.is_some()) else {
        return Ok(call(ai));
    };
    // VUID-VkMemoryAllocateInfo-pNext-00640: not both the NV and the core structure.
    if unsafe { pnext::find::<vk::ExportMemoryAllocateInfo>(ai.p_next) }.is_some() {
        layer_error!("vkAllocateMemory: VkExportMemoryAllocateInfoNV together with VkExportMemoryAllocateInfo (VUID-VkMemoryAllocateInfo-pNext-00640)");
        return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
    }
    let Some(handle_types) = handle_types::nv_to_khr(nv_info.handle_types) else {
        layer_error!("vkAllocateMemory: handle types {:?} cannot be backed here", nv_info.handle_types);
        return Err(vk::Result::ERROR_VALIDATION_FAILED_EXT);
    };
    let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_types);
    // SAFETY: the NV node is in the application's chain.
    Ok(unsafe {
        with_replaced(ai.p_next, nv_info as *const _ as *const _, &mut export, handle_types.is_empty(), |p_next| {
            call(&vk::MemoryAllocateInfo { p_next, ..*ai })
        })
    })
}

/// Calls `call` with a chain in which the NV node `nv_node` gives way to `core` (or to nothing
/// when `drop_core`). The application's chain is copied, never edited. When a node in front of
/// the NV one is of a type the layer cannot copy, the NV node stays in the chain (drivers skip
/// structures they do not know) and `core` goes in front.
///
/// # Safety
/// `p_next` must be a valid chain containing `nv_node`; `core` must have a null `p_next`.
pub unsafe fn with_replaced<T: vk::TaggedStructure, R>(
    p_next: *const c_void,
    nv_node: *const vk::BaseInStructure,
    core: &mut T,
    drop_core: bool,
    call: impl FnOnce(*const c_void) -> R,
) -> R {
    // SAFETY: forwarded from the caller.
    let rest = unsafe { ChainWithout::new(p_next, nv_node) };
    let tail = match &rest {
        Some(chain) => chain.head(),
        None => {
            layer_log!("pNext chain holds a structure the layer cannot copy; the NV structure stays in it");
            p_next
        }
    };
    if drop_core {
        return call(tail);
    }
    let core_base = core as *mut T as *mut vk::BaseOutStructure;
    // SAFETY: every tagged structure starts with a `VkBaseOutStructure` header.
    unsafe { (*core_base).p_next = tail as *mut vk::BaseOutStructure };
    call(core_base as *const c_void)
}
