//! `vkCreateDevice` / `vkDestroyDevice`: walking the chain and keeping device state.

use crate::dispatch::{
    dispatch_key, extension_names, load_device_fn, load_instance_fn, DeviceData, NvDeviceFns, DEVICES, INSTANCES,
};
use crate::ext::nv_dedicated_allocation::{self as nv_ded, Dedicated, DedicatedFns};
use crate::ext::nv_external_memory as nv_mem;
use crate::loader;
use crate::log::{layer_error, layer_log};
use crate::marking::{Marking, PhysicalDeviceQueries, RequirementQueries, ThrowAway};
use ash::vk;
use std::ffi::{c_char, CStr};

/// What the layer does for one device: the extensions it passes down (`None`: the
/// application's, untouched), which NV extensions it implements, and the commands of the
/// extensions it enabled for itself, which the application does not get.
struct Plan<'a> {
    down: Option<Vec<&'a CStr>>,
    nv_memory: bool,
    nv_dedicated: bool,
    hidden: Vec<&'static CStr>,
}

/// The commands of the extensions the layer may enable below itself.
const MAINTENANCE4_COMMANDS: [&CStr; 3] = [
    c"vkGetDeviceBufferMemoryRequirementsKHR",
    c"vkGetDeviceImageMemoryRequirementsKHR",
    c"vkGetDeviceImageSparseMemoryRequirementsKHR",
];
const REQUIREMENTS2_COMMANDS: [&CStr; 3] = [
    c"vkGetBufferMemoryRequirements2KHR",
    c"vkGetImageMemoryRequirements2KHR",
    c"vkGetImageSparseMemoryRequirements2KHR",
];

/// Decides the [`Plan`] for an application that enabled `app` on a device of `api_version`
/// (the application's and the device's lower one). The application's `apiVersion` is never
/// raised: what a version lacks comes from extensions enabled below the layer.
fn plan<'a>(
    app: &[&'a CStr],
    api_version: u32,
    info: crate::dispatch::PhysicalDeviceInfo,
    settings: &crate::settings::Settings,
) -> Result<Plan<'a>, vk::Result> {
    let mut down = nv_mem::device_extensions_down(app, api_version, info, settings)?;
    let nv_memory = down.is_some();
    let wants_dedicated = app.contains(&nv_ded::NAME);
    let nv_dedicated = wants_dedicated && info.dedicated_implemented(settings);
    if wants_dedicated && settings.active() && !info.dedicated_native && !info.dedicated_backed {
        layer_error!("vkCreateDevice: VK_NV_dedicated_allocation asked for, but the driver cannot back it");
        return Err(vk::Result::ERROR_EXTENSION_NOT_PRESENT);
    }
    let mut hidden = Vec::new();
    let mut add = |list: &mut Vec<&'a CStr>, ext: &'static CStr, commands: &[&'static CStr]| {
        if !list.contains(&ext) {
            list.push(ext);
            hidden.extend_from_slice(commands);
        }
    };
    if nv_dedicated {
        let list = down.get_or_insert_with(|| app.to_vec());
        list.retain(|&n| n != nv_ded::NAME);
        for &ext in nv_ded::extensions_below(api_version) {
            let commands: &[&CStr] =
                if ext == ash::khr::get_memory_requirements2::NAME { &REQUIREMENTS2_COMMANDS } else { &[] };
            add(list, ext, commands);
        }
    }
    // Marking compares requirements without creating anything where the device can: 1.1 and
    // 1.2 applications get VK_KHR_maintenance4 below the layer (it needs 1.1).
    let version = (vk::API_VERSION_1_1..vk::API_VERSION_1_3).contains(&api_version);
    if let Some(list) = down.as_mut().filter(|_| nv_memory && version && info.maintenance4) {
        add(list, ash::khr::maintenance4::NAME, &MAINTENANCE4_COMMANDS);
    }
    Ok(Plan { down, nv_memory, nv_dedicated, hidden })
}

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
    let Plan { down, nv_memory, nv_dedicated, hidden } = match plan(&app, api_version, info, &inst.settings) {
        Ok(plan) => plan,
        Err(e) => return e,
    };
    layer_log!(
        "vkCreateDevice: api {}.{}, implementing VK_NV_external_memory: {nv_memory}, VK_NV_dedicated_allocation: {nv_dedicated}, passing down {down:?}",
        vk::api_version_major(api_version),
        vk::api_version_minor(api_version)
    );
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
    let nv = if nv_memory || nv_dedicated {
        let maintenance4 = down.iter().flatten().any(|&n| n == ash::khr::maintenance4::NAME);
        // SAFETY: commands of the device just created, each with its own `PFN_` type.
        let fns = unsafe {
            load_nv_fns(gdpa, handle, &inst, physical_device, api_version, maintenance4, nv_memory, nv_dedicated)
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
    let app_maintenance4 = app.contains(&ash::khr::maintenance4::NAME);
    let data = DeviceData {
        handle,
        next_get_device_proc_addr: gdpa,
        destroy_device,
        api_version,
        hidden,
        app_maintenance4,
        nv,
    };
    // SAFETY: a live device created through the loader.
    DEVICES.insert(unsafe { dispatch_key(handle) }, data);
    vk::Result::SUCCESS
}

/// The next element's commands for the NV device extensions the layer implements.
///
/// # Safety
/// `handle` must be a device just created from `physical_device` of `inst` through `gdpa`.
#[allow(clippy::too_many_arguments)]
unsafe fn load_nv_fns(
    gdpa: vk::PFN_vkGetDeviceProcAddr,
    handle: vk::Device,
    inst: &crate::dispatch::InstanceData,
    physical_device: vk::PhysicalDevice,
    api_version: u32,
    maintenance4: bool,
    nv_memory: bool,
    nv_dedicated: bool,
) -> Option<NvDeviceFns> {
    // SAFETY: each command is loaded with its own `PFN_` type.
    unsafe {
        let core_1_3 = api_version >= vk::API_VERSION_1_3;
        let buffer = if core_1_3 {
            load_device_fn(gdpa, handle, c"vkGetDeviceBufferMemoryRequirements")
        } else if maintenance4 {
            load_device_fn(gdpa, handle, c"vkGetDeviceBufferMemoryRequirementsKHR")
        } else {
            None
        };
        let image = if core_1_3 {
            load_device_fn(gdpa, handle, c"vkGetDeviceImageMemoryRequirements")
        } else if maintenance4 {
            load_device_fn(gdpa, handle, c"vkGetDeviceImageMemoryRequirementsKHR")
        } else {
            None
        };
        let throw_away = ThrowAway {
            create_buffer: load_device_fn(gdpa, handle, c"vkCreateBuffer")?,
            destroy_buffer: load_device_fn(gdpa, handle, c"vkDestroyBuffer")?,
            buffer_requirements: load_device_fn(gdpa, handle, c"vkGetBufferMemoryRequirements")?,
            create_image: load_device_fn(gdpa, handle, c"vkCreateImage")?,
            destroy_image: load_device_fn(gdpa, handle, c"vkDestroyImage")?,
            image_requirements: load_device_fn(gdpa, handle, c"vkGetImageMemoryRequirements")?,
        };
        let marking = nv_memory.then(|| {
            Marking::new(
                PhysicalDeviceQueries {
                    physical_device,
                    image_format_properties2: inst.fns.get_physical_device_image_format_properties2,
                    external_buffer_properties: inst.fns.get_physical_device_external_buffer_properties,
                },
                RequirementQueries { device: handle, buffer, image, throw_away: Some(throw_away) },
            )
        });
        let dedicated = if nv_dedicated {
            Some(Dedicated::new(DedicatedFns {
                image_requirements: throw_away.image_requirements,
                buffer_requirements: throw_away.buffer_requirements,
                bind_image_memory: load_device_fn(gdpa, handle, c"vkBindImageMemory")?,
                bind_buffer_memory: load_device_fn(gdpa, handle, c"vkBindBufferMemory")?,
                destroy_image: throw_away.destroy_image,
                destroy_buffer: throw_away.destroy_buffer,
                free_memory: load_device_fn(gdpa, handle, c"vkFreeMemory")?,
            }))
        } else {
            None
        };
        Some(NvDeviceFns {
            create_image: throw_away.create_image,
            create_buffer: throw_away.create_buffer,
            allocate_memory: load_device_fn(gdpa, handle, c"vkAllocateMemory")?,
            marking,
            dedicated,
        })
    }
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
