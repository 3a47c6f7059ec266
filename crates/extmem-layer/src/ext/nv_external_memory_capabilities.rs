//! <https://registry.khronos.org/vulkan/specs/latest/man/html/VK_NV_external_memory_capabilities.html>
//!
//! VK_NV_external_memory_capabilities (instance extension #56, spec version 1) on top of
//! core 1.1 / VK_KHR_external_memory_capabilities.

use crate::dispatch::InstanceData;
use crate::handle_types;
use crate::log::{layer_error, layer_log};
use ash::vk;
use std::ffi::CStr;

/// `VK_NV_external_memory_capabilities`.
pub const NAME: &CStr = ash::nv::external_memory_capabilities::NAME;

/// What the layer asks of the driver for an instance on which it implements the extension,
/// when the application's API version is below 1.1.
pub const KHR_DEPENDENCIES: [&CStr; 2] =
    [ash::khr::get_physical_device_properties2::NAME, ash::khr::external_memory_capabilities::NAME];

/// The instance extensions to pass down: the application's, less the NV one, plus what the
/// layer needs underneath. Returns the list and whether the layer implements the extension.
///
/// The layer implements it whenever the application enables it. A layer has no safe way to ask
/// what lies below before `vkCreateInstance`: calling the next element's
/// `vkGetInstanceProcAddr` with a null instance for `vkEnumerateInstanceExtensionProperties`
/// crashes some layers below (Mesa's device_select did, with this layer installed implicitly).
/// No driver outside NVIDIA's Windows driver has the extension, and there the layer's answers
/// come from the same driver through the KHR query. The device extension is passed through
/// where the driver has it (that list can be asked safely).
pub fn instance_extensions_down<'a>(app: &[&'a CStr], api_version: u32) -> (Vec<&'a CStr>, bool) {
    let emulate = app.contains(&NAME);
    if !emulate {
        return (app.to_vec(), false);
    }
    let mut down: Vec<&CStr> = app.iter().copied().filter(|&n| n != NAME).collect();
    if api_version < vk::API_VERSION_1_1 {
        for dep in KHR_DEPENDENCIES {
            if !down.contains(&dep) {
                down.push(dep);
            }
        }
    }
    (down, true)
}

/// `vkGetPhysicalDeviceExternalImageFormatPropertiesNV`, answered through
/// `vkGetPhysicalDeviceImageFormatProperties2` with `VkPhysicalDeviceExternalImageFormatInfo`.
///
/// # Safety
/// `physical_device` must belong to `inst`; `out` must be null or writable.
#[allow(clippy::too_many_arguments)]
pub unsafe fn get_external_image_format_properties(
    inst: &InstanceData,
    physical_device: vk::PhysicalDevice,
    format: vk::Format,
    ty: vk::ImageType,
    tiling: vk::ImageTiling,
    usage: vk::ImageUsageFlags,
    flags: vk::ImageCreateFlags,
    external_handle_type: vk::ExternalMemoryHandleTypeFlagsNV,
    out: *mut vk::ExternalImageFormatPropertiesNV,
) -> vk::Result {
    if out.is_null() {
        layer_error!("vkGetPhysicalDeviceExternalImageFormatPropertiesNV: pExternalImageFormatProperties is NULL");
        return vk::Result::ERROR_VALIDATION_FAILED_EXT;
    }
    // SAFETY: forwarded from the caller.
    let answer = unsafe { answer(inst, physical_device, format, ty, tiling, usage, flags, external_handle_type) };
    // On success every member is written; on VK_ERROR_FORMAT_NOT_SUPPORTED the whole structure
    // is zero, as `vkGetPhysicalDeviceImageFormatProperties` leaves its output when it refuses.
    let (result, written) = match answer {
        Ok(properties) => (vk::Result::SUCCESS, properties),
        Err(e @ vk::Result::ERROR_FORMAT_NOT_SUPPORTED) => (e, vk::ExternalImageFormatPropertiesNV::default()),
        Err(e) => return e,
    };
    // SAFETY: `out` is non-null and writable.
    unsafe { out.write(written) };
    result
}

/// The answer of [`get_external_image_format_properties`] before it is written out.
///
/// # Safety
/// `physical_device` must belong to `inst`.
#[allow(clippy::too_many_arguments)]
unsafe fn answer(
    inst: &InstanceData,
    physical_device: vk::PhysicalDevice,
    format: vk::Format,
    ty: vk::ImageType,
    tiling: vk::ImageTiling,
    usage: vk::ImageUsageFlags,
    flags: vk::ImageCreateFlags,
    external_handle_type: vk::ExternalMemoryHandleTypeFlagsNV,
) -> Result<vk::ExternalImageFormatPropertiesNV, vk::Result> {
    if external_handle_type.is_empty() {
        // The specification: with no handle type, exactly the plain query, other members 0.
        let mut image_format_properties = vk::ImageFormatProperties::default();
        // SAFETY: valid handles and output.
        let r = unsafe {
            (inst.fns.get_physical_device_image_format_properties)(
                physical_device,
                format,
                ty,
                tiling,
                usage,
                flags,
                &mut image_format_properties,
            )
        };
        return r.result_with_success(vk::ExternalImageFormatPropertiesNV {
            image_format_properties,
            ..Default::default()
        });
    }
    // At most one bit (VUID-...-externalHandleType-07721), and one this platform can back.
    let khr = match handle_types::nv_to_khr(external_handle_type) {
        Some(khr) if external_handle_type.as_raw().count_ones() == 1 => khr,
        _ => {
            layer_log!("external image format query: handle type {external_handle_type:?} is not supported here");
            return Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED);
        }
    };
    let Some(query2) = inst.fns.get_physical_device_image_format_properties2 else {
        return Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED);
    };
    let mut external_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(khr);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(ty)
        .tiling(tiling)
        .usage(usage)
        .flags(flags)
        .push_next(&mut external_info);
    let mut external = vk::ExternalImageFormatProperties::default();
    let mut properties = vk::ImageFormatProperties2::default().push_next(&mut external);
    // SAFETY: valid handles; both chains are built here.
    unsafe { query2(physical_device, &info, &mut properties) }.result()?;
    let image_format_properties = properties.image_format_properties;
    let memory = external.external_memory_properties;
    let usable = vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE;
    if !memory.external_memory_features.intersects(usable) {
        return Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED);
    }
    Ok(vk::ExternalImageFormatPropertiesNV {
        image_format_properties,
        external_memory_features: handle_types::features_to_nv(memory.external_memory_features),
        export_from_imported_handle_types: handle_types::khr_to_nv(memory.export_from_imported_handle_types),
        // The queried type is compatible with itself, whatever the backing reports.
        compatible_handle_types: handle_types::khr_to_nv(memory.compatible_handle_types) | external_handle_type,
    })
}
