//! `vkCreateDevice` / `vkDestroyDevice`: walking the chain and keeping device state.

use crate::dispatch::{
    dispatch_key, extension_names, load_device_fn, load_instance_fn, DeviceData, NvDeviceFns, DEVICES, INSTANCES,
};
use crate::ext::nv_external_memory as nv_mem;
use crate::loader;
use crate::log::{layer_error, layer_log};
use crate::marking::{Marking, PhysicalDeviceQueries, RequirementQueries};
use ash::vk;
use std::ffi::c_char;

/// The layer's `vkCreateDevice`.
///
/// # Safety
/// Arguments as the loader passes them to a layer.
pub unsafe fn create_device(
    physical_device: vk::PhysicalDevice,
    create_info: *const vk::DeviceCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    device: *mut vk::Device,
) -> vk::Result {
    if create_info.is_null() || device.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: a live physical device of an instance this layer sits in.
    let Some(inst) = INSTANCES.get(unsafe { dispatch_key(physical_device) }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: non-null and valid per the caller.
    let ci = unsafe { &*create_info };
    // SAFETY: a create info the loader handed to a layer.
    let Some(link) = (unsafe { loader::take_device_link(ci) }) else {
        layer_error!("vkCreateDevice: no loader link info in the chain");
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: the next element's command for this instance.
    let Some(next_create) = (unsafe {
        load_instance_fn::<vk::PFN_vkCreateDevice>(link.get_instance_proc_addr, inst.handle, c"vkCreateDevice")
    }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };

    // SAFETY: the application's names are valid strings.
    let app = unsafe { extension_names(ci.pp_enabled_extension_names, ci.enabled_extension_count) };
    // SAFETY: the physical device belongs to `inst`.
    let info = unsafe { nv_mem::probe(&inst, physical_device) };
    let api_version = inst.api_version.min(info.api_version);
    let down = match nv_mem::device_extensions_down(&app, api_version, info, &inst.settings) {
        Ok(down) => down,
        Err(e) => return e,
    };
    layer_log!("vkCreateDevice: implementing VK_NV_external_memory: {}, passing down {down:?}", down.is_some());
    let names: Vec<*const c_char> = down.iter().flatten().map(|n| n.as_ptr()).collect();
    let mut down_ci = *ci;
    if down.is_some() {
        down_ci.enabled_extension_count = names.len() as u32;
        down_ci.pp_enabled_extension_names = names.as_ptr();
    }

    // SAFETY: a valid create info whose chain the loader advanced.
    let r = unsafe { next_create(physical_device, &down_ci, allocator, device) };
    if r != vk::Result::SUCCESS {
        return r;
    }
    // SAFETY: the call succeeded.
    let handle = unsafe { *device };
    let gdpa = link.get_device_proc_addr;
    // SAFETY: commands of the device just created, each with its own `PFN_` type.
    let destroy_device = unsafe { load_device_fn::<vk::PFN_vkDestroyDevice>(gdpa, handle, c"vkDestroyDevice") };
    let Some(destroy_device) = destroy_device else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    let nv = if down.is_some() {
        // SAFETY: as above.
        let fns = unsafe {
            (|| {
                let device_buffer_memory_requirements =
                    load_device_fn(gdpa, handle, c"vkGetDeviceBufferMemoryRequirements")
                        .or_else(|| load_device_fn(gdpa, handle, c"vkGetDeviceBufferMemoryRequirementsKHR"));
                let device_image_memory_requirements =
                    load_device_fn(gdpa, handle, c"vkGetDeviceImageMemoryRequirements")
                        .or_else(|| load_device_fn(gdpa, handle, c"vkGetDeviceImageMemoryRequirementsKHR"));
                Some(NvDeviceFns {
                    create_image: load_device_fn(gdpa, handle, c"vkCreateImage")?,
                    create_buffer: load_device_fn(gdpa, handle, c"vkCreateBuffer")?,
                    allocate_memory: load_device_fn(gdpa, handle, c"vkAllocateMemory")?,
                    marking: Marking::new(
                        PhysicalDeviceQueries {
                            physical_device,
                            image_format_properties2: inst.fns.get_physical_device_image_format_properties2,
                            external_buffer_properties: inst.fns.get_physical_device_external_buffer_properties,
                        },
                        RequirementQueries {
                            device: handle,
                            buffer: device_buffer_memory_requirements,
                            image: device_image_memory_requirements,
                        },
                    ),
                })
            })()
        };
        if fns.is_none() {
            // SAFETY: the device was created and goes back through its own command.
            unsafe { destroy_device(handle, allocator) };
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        fns
    } else {
        None
    };
    let data = DeviceData { handle, next_get_device_proc_addr: gdpa, destroy_device, nv };
    // SAFETY: a live device created through the loader.
    DEVICES.insert(unsafe { dispatch_key(handle) }, data);
    vk::Result::SUCCESS
}

/// The layer's `vkDestroyDevice`: state leaves the map before the call goes down.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn destroy_device(device: vk::Device, allocator: *const vk::AllocationCallbacks) {
    if device == vk::Device::null() {
        return;
    }
    // SAFETY: a live device.
    if let Some(data) = DEVICES.remove(unsafe { dispatch_key(device) }) {
        // SAFETY: forwarded.
        unsafe { (data.destroy_device)(device, allocator) };
    }
}
