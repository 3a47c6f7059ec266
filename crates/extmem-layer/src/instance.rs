//! `vkCreateInstance` / `vkDestroyInstance`: walking the chain and keeping instance state.

use crate::dispatch::{dispatch_key, extension_names, load_instance_fn, InstanceData, InstanceFns, INSTANCES};
use crate::ext::nv_external_memory_capabilities as nv_caps;
use crate::loader;
use crate::log::{layer_error, layer_log};
use crate::settings::Settings;
use ash::vk;
use std::ffi::c_char;

/// The layer's `vkCreateInstance`.
///
/// # Safety
/// Arguments as the loader passes them to a layer.
pub unsafe fn create_instance(
    create_info: *const vk::InstanceCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    instance: *mut vk::Instance,
) -> vk::Result {
    if create_info.is_null() || instance.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: non-null and valid per the caller.
    let ci = unsafe { &*create_info };
    // SAFETY: a create info the loader handed to a layer.
    let Some(link) = (unsafe { loader::take_instance_link(ci) }) else {
        layer_error!("vkCreateInstance: no loader link info in the chain");
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    let gipa = link.get_instance_proc_addr;
    // SAFETY: a global command of the next element.
    let Some(next_create) =
        (unsafe { load_instance_fn::<vk::PFN_vkCreateInstance>(gipa, vk::Instance::null(), c"vkCreateInstance") })
    else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };

    // SAFETY: the application's names are valid strings.
    let app = unsafe { extension_names(ci.pp_enabled_extension_names, ci.enabled_extension_count) };
    let api_version = match unsafe { ci.p_application_info.as_ref() } {
        Some(app_info) if app_info.api_version != 0 => app_info.api_version,
        _ => vk::API_VERSION_1_0,
    };
    // SAFETY: the application's chain is valid.
    let settings = unsafe { Settings::resolve(ci.p_next) };
    crate::log::set_level(settings.log_level);
    let (down, emulate) =
        if settings.active() { nv_caps::instance_extensions_down(&app, api_version) } else { (app.clone(), false) };
    layer_log!(
        "vkCreateInstance: api {}.{}, {settings:?}, implementing NV capabilities: {emulate}, passing down {down:?}",
        vk::api_version_major(api_version),
        vk::api_version_minor(api_version)
    );
    let names: Vec<*const c_char> = down.iter().map(|n| n.as_ptr()).collect();
    let mut down_ci = *ci;
    // SAFETY: the application's chain outlives the call below.
    let without_settings = unsafe { crate::settings::chain_without_own_settings(ci.p_next) };
    if let Some(chain) = &without_settings {
        down_ci.p_next = chain.head();
    }
    down_ci.enabled_extension_count = names.len() as u32;
    down_ci.pp_enabled_extension_names = names.as_ptr();

    // SAFETY: a valid create info whose chain the loader advanced.
    let r = unsafe { next_create(&down_ci, allocator, instance) };
    if r != vk::Result::SUCCESS {
        return r;
    }
    // SAFETY: the call succeeded.
    let handle = unsafe { *instance };
    let properties2 = if api_version >= vk::API_VERSION_1_1 {
        Some(c"vkGetPhysicalDeviceImageFormatProperties2")
    } else if down.contains(&ash::khr::get_physical_device_properties2::NAME) {
        Some(c"vkGetPhysicalDeviceImageFormatProperties2KHR")
    } else {
        None
    };
    let buffer_properties = if api_version >= vk::API_VERSION_1_1 {
        Some(c"vkGetPhysicalDeviceExternalBufferProperties")
    } else if down.contains(&ash::khr::external_memory_capabilities::NAME) {
        Some(c"vkGetPhysicalDeviceExternalBufferPropertiesKHR")
    } else {
        None
    };
    // SAFETY: commands of the instance just created, each loaded with its own `PFN_` type.
    let fns = unsafe {
        (|| {
            Some(InstanceFns {
                destroy_instance: load_instance_fn(gipa, handle, c"vkDestroyInstance")?,
                enumerate_device_extension_properties: load_instance_fn(
                    gipa,
                    handle,
                    c"vkEnumerateDeviceExtensionProperties",
                )?,
                get_physical_device_properties: load_instance_fn(gipa, handle, c"vkGetPhysicalDeviceProperties")?,
                get_physical_device_image_format_properties: load_instance_fn(
                    gipa,
                    handle,
                    c"vkGetPhysicalDeviceImageFormatProperties",
                )?,
                get_physical_device_image_format_properties2: properties2
                    .and_then(|n| load_instance_fn(gipa, handle, n)),
                get_physical_device_external_buffer_properties: buffer_properties
                    .and_then(|n| load_instance_fn(gipa, handle, n)),
            })
        })()
    };
    let Some(fns) = fns else {
        layer_error!("vkCreateInstance: the next element lacks a core command");
        // SAFETY: the instance was created and is destroyed through its own command.
        if let Some(destroy) =
            unsafe { load_instance_fn::<vk::PFN_vkDestroyInstance>(gipa, handle, c"vkDestroyInstance") }
        {
            unsafe { destroy(handle, allocator) };
        }
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    let data = InstanceData {
        handle,
        next: link,
        fns,
        api_version,
        emulates_nv_capabilities: emulate,
        settings,
        physical_devices: Default::default(),
    };
    // SAFETY: a live instance created through the loader.
    INSTANCES.insert(unsafe { dispatch_key(handle) }, data);
    vk::Result::SUCCESS
}

/// The layer's `vkDestroyInstance`: state leaves the map before the call goes down.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn destroy_instance(instance: vk::Instance, allocator: *const vk::AllocationCallbacks) {
    if instance == vk::Instance::null() {
        return;
    }
    // SAFETY: a live instance.
    if let Some(data) = INSTANCES.remove(unsafe { dispatch_key(instance) }) {
        // SAFETY: forwarded.
        unsafe { (data.fns.destroy_instance)(instance, allocator) };
    }
}
