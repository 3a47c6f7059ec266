//! Name → function tables for `vkGet*ProcAddr`, and the hooks C calls, each behind a panic
//! guard. A command the layer does not intercept resolves to the next element's own pointer,
//! so it costs nothing at call time.

use crate::dispatch::{dispatch_key, DeviceData, NvDeviceFns, DEVICES, INSTANCES};
use crate::ext::nv_dedicated_allocation::{Dedicated, Target};
use crate::ext::{nv_external_memory as nv_mem, nv_external_memory_capabilities as nv_caps};
use crate::{device, guarded, instance, resources};
use ash::vk;
use std::ffi::{c_char, CStr};

/// A hook as the untyped pointer `vkGet*ProcAddr` returns. The `as` cast checks the hook's
/// signature against the command's `PFN_` type at compile time.
macro_rules! void_fn {
    ($f:path as $pfn:ty) => {
        // SAFETY: function pointers of any signature share one representation.
        Some(unsafe { std::mem::transmute::<$pfn, unsafe extern "system" fn()>($f as $pfn) })
    };
}

/// `vkGetInstanceProcAddr` of the layer.
///
/// # Safety
/// `name` must be null or a valid string; `instance` null or live.
unsafe fn instance_proc_addr(instance: vk::Instance, name: *const c_char) -> vk::PFN_vkVoidFunction {
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null and valid per the caller.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    match name {
        b"vkGetInstanceProcAddr" => return void_fn!(get_instance_proc_addr as vk::PFN_vkGetInstanceProcAddr),
        b"vkGetDeviceProcAddr" => return void_fn!(get_device_proc_addr as vk::PFN_vkGetDeviceProcAddr),
        b"vkCreateInstance" => return void_fn!(create_instance as vk::PFN_vkCreateInstance),
        _ => {}
    }
    if instance == vk::Instance::null() {
        return None;
    }
    // SAFETY: a live instance.
    let inst = INSTANCES.get(unsafe { dispatch_key(instance) })?;
    match name {
        b"vkDestroyInstance" => void_fn!(destroy_instance as vk::PFN_vkDestroyInstance),
        b"vkCreateDevice" => void_fn!(create_device as vk::PFN_vkCreateDevice),
        b"vkEnumerateDeviceExtensionProperties" => {
            void_fn!(enumerate_device_extension_properties as vk::PFN_vkEnumerateDeviceExtensionProperties)
        }
        b"vkGetPhysicalDeviceExternalImageFormatPropertiesNV" if inst.emulates_nv_capabilities => void_fn!(
            get_physical_device_external_image_format_properties_nv
                as vk::PFN_vkGetPhysicalDeviceExternalImageFormatPropertiesNV
        ),
        // SAFETY: the next element answers for everything else.
        _ => unsafe { (inst.next.get_instance_proc_addr)(inst.handle, name.as_ptr().cast()) },
    }
}

/// `vk_layerGetPhysicalDeviceProcAddr` of the layer.
///
/// # Safety
/// As for [`instance_proc_addr`].
unsafe fn physical_device_proc_addr(instance: vk::Instance, name: *const c_char) -> vk::PFN_vkVoidFunction {
    if name.is_null() || instance == vk::Instance::null() {
        return None;
    }
    // SAFETY: a live instance.
    let inst = INSTANCES.get(unsafe { dispatch_key(instance) })?;
    // SAFETY: non-null and valid per the caller.
    if inst.emulates_nv_capabilities
        && unsafe { CStr::from_ptr(name) }.to_bytes() == b"vkGetPhysicalDeviceExternalImageFormatPropertiesNV"
    {
        return void_fn!(
            get_physical_device_external_image_format_properties_nv
                as vk::PFN_vkGetPhysicalDeviceExternalImageFormatPropertiesNV
        );
    }
    // SAFETY: forwarded to the next element.
    inst.next.get_physical_device_proc_addr.and_then(|f| unsafe { f(inst.handle, name) })
}

/// `vkGetDeviceProcAddr` of the layer.
///
/// # Safety
/// `name` must be null or a valid string; `device` live.
unsafe fn device_proc_addr(device: vk::Device, name: *const c_char) -> vk::PFN_vkVoidFunction {
    if name.is_null() || device == vk::Device::null() {
        return None;
    }
    // SAFETY: non-null and valid per the caller.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes_with_nul();
    if name == b"vkGetDeviceProcAddr\0" {
        return void_fn!(get_device_proc_addr as vk::PFN_vkGetDeviceProcAddr);
    }
    // SAFETY: a live device.
    let dev = DEVICES.get(unsafe { dispatch_key(device) })?;
    // Commands of extensions only the layer enabled: NULL, as without the layer.
    if dev.hidden.iter().any(|h| h.to_bytes_with_nul() == name) {
        return None;
    }
    let marking = dev.nv.as_ref().and_then(|nv| nv.marking.as_ref()).map(|m| m.requirement_queries());
    let dedicated = dev.nv.as_ref().is_some_and(|nv| nv.dedicated.is_some());
    let core_1_3 = dev.api_version >= vk::API_VERSION_1_3;
    let app_m4 = dev.app_maintenance4;
    match name {
        b"vkDestroyDevice\0" => void_fn!(destroy_device as vk::PFN_vkDestroyDevice),
        b"vkCreateImage\0" if dev.nv.is_some() => void_fn!(create_image as vk::PFN_vkCreateImage),
        b"vkCreateBuffer\0" if dev.nv.is_some() => void_fn!(create_buffer as vk::PFN_vkCreateBuffer),
        b"vkGetDeviceBufferMemoryRequirements\0" if core_1_3 && marking.is_some_and(|q| q.buffer.is_some()) => {
            void_fn!(device_buffer_memory_requirements as vk::PFN_vkGetDeviceBufferMemoryRequirements)
        }
        b"vkGetDeviceBufferMemoryRequirementsKHR\0" if app_m4 && marking.is_some_and(|q| q.buffer.is_some()) => {
            void_fn!(device_buffer_memory_requirements as vk::PFN_vkGetDeviceBufferMemoryRequirements)
        }
        b"vkGetDeviceImageMemoryRequirements\0" if core_1_3 && marking.is_some_and(|q| q.image.is_some()) => {
            void_fn!(device_image_memory_requirements as vk::PFN_vkGetDeviceImageMemoryRequirements)
        }
        b"vkGetDeviceImageMemoryRequirementsKHR\0" if app_m4 && marking.is_some_and(|q| q.image.is_some()) => {
            void_fn!(device_image_memory_requirements as vk::PFN_vkGetDeviceImageMemoryRequirements)
        }
        b"vkAllocateMemory\0" if dev.nv.is_some() => void_fn!(allocate_memory as vk::PFN_vkAllocateMemory),
        b"vkBindImageMemory\0" if dedicated => void_fn!(bind_image_memory as vk::PFN_vkBindImageMemory),
        b"vkBindBufferMemory\0" if dedicated => void_fn!(bind_buffer_memory as vk::PFN_vkBindBufferMemory),
        b"vkDestroyImage\0" if dedicated => void_fn!(destroy_image as vk::PFN_vkDestroyImage),
        b"vkDestroyBuffer\0" if dedicated => void_fn!(destroy_buffer as vk::PFN_vkDestroyBuffer),
        b"vkFreeMemory\0" if dedicated => void_fn!(free_memory as vk::PFN_vkFreeMemory),
        // SAFETY: the next element answers for everything else.
        _ => unsafe { (dev.next_get_device_proc_addr)(dev.handle, name.as_ptr().cast()) },
    }
}

// The layer's own `vkGet*ProcAddr`. The exported symbols of the same names only forward here:
// an exported symbol can be interposed by the loader's own (an application linked against
// libvulkan puts the loader's `vkGetInstanceProcAddr` first in the global scope), so the
// pointers the layer hands out must never be the exported ones.

/// The layer's `vkGetInstanceProcAddr`.
pub unsafe extern "system" fn get_instance_proc_addr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: arguments from the loader or the layer above.
    guarded(None, || unsafe { instance_proc_addr(instance, name) })
}

/// The layer's `vkGetDeviceProcAddr`.
pub unsafe extern "system" fn get_device_proc_addr(device: vk::Device, name: *const c_char) -> vk::PFN_vkVoidFunction {
    // SAFETY: arguments from the loader or the layer above.
    guarded(None, || unsafe { device_proc_addr(device, name) })
}

/// The layer's `vk_layerGetPhysicalDeviceProcAddr`.
pub unsafe extern "system" fn get_physical_device_proc_addr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: arguments from the loader.
    guarded(None, || unsafe { physical_device_proc_addr(instance, name) })
}

unsafe extern "system" fn create_instance(
    create_info: *const vk::InstanceCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::Instance,
) -> vk::Result {
    // SAFETY: arguments from the loader.
    guarded(vk::Result::ERROR_INITIALIZATION_FAILED, || unsafe {
        instance::create_instance(create_info, allocator, out)
    })
}

unsafe extern "system" fn destroy_instance(handle: vk::Instance, allocator: *const vk::AllocationCallbacks) {
    // SAFETY: arguments from the application.
    guarded((), || unsafe { instance::destroy_instance(handle, allocator) })
}

unsafe extern "system" fn create_device(
    physical_device: vk::PhysicalDevice,
    create_info: *const vk::DeviceCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::Device,
) -> vk::Result {
    // SAFETY: arguments from the loader.
    guarded(vk::Result::ERROR_INITIALIZATION_FAILED, || unsafe {
        device::create_device(physical_device, create_info, allocator, out)
    })
}

unsafe extern "system" fn destroy_device(handle: vk::Device, allocator: *const vk::AllocationCallbacks) {
    // SAFETY: arguments from the application.
    guarded((), || unsafe { device::destroy_device(handle, allocator) })
}

unsafe extern "system" fn enumerate_device_extension_properties(
    physical_device: vk::PhysicalDevice,
    layer_name: *const c_char,
    count: *mut u32,
    out: *mut vk::ExtensionProperties,
) -> vk::Result {
    guarded(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        // SAFETY: a live physical device.
        let Some(inst) = INSTANCES.get(unsafe { dispatch_key(physical_device) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: arguments from the application.
        unsafe { nv_mem::enumerate_device_extension_properties(&inst, physical_device, layer_name, count, out) }
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn get_physical_device_external_image_format_properties_nv(
    physical_device: vk::PhysicalDevice,
    format: vk::Format,
    ty: vk::ImageType,
    tiling: vk::ImageTiling,
    usage: vk::ImageUsageFlags,
    flags: vk::ImageCreateFlags,
    external_handle_type: vk::ExternalMemoryHandleTypeFlagsNV,
    out: *mut vk::ExternalImageFormatPropertiesNV,
) -> vk::Result {
    guarded(vk::Result::ERROR_FORMAT_NOT_SUPPORTED, || {
        // SAFETY: a live physical device.
        let Some(inst) = INSTANCES.get(unsafe { dispatch_key(physical_device) }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        // SAFETY: arguments from the application.
        unsafe {
            nv_caps::get_external_image_format_properties(
                &inst,
                physical_device,
                format,
                ty,
                tiling,
                usage,
                flags,
                external_handle_type,
                out,
            )
        }
    })
}

/// Runs `call` with the state and NV commands of `handle`'s device; `None` where the layer
/// does not know the device or does not implement VK_NV_external_memory on it.
///
/// # Safety
/// `handle` must be a live device.
unsafe fn on_nv_device<R>(handle: vk::Device, call: impl FnOnce(&DeviceData, &NvDeviceFns) -> R) -> Option<R> {
    // SAFETY: a live device, per the caller.
    let dev = DEVICES.get(unsafe { dispatch_key(handle) })?;
    dev.nv.as_ref().map(|nv| call(&dev, nv))
}

unsafe extern "system" fn create_image(
    handle: vk::Device,
    create_info: *const vk::ImageCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::Image,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device; arguments from the application.
        unsafe { on_nv_device(handle, |dev, nv| resources::create_image(dev, nv, create_info, allocator, out)) }
            .unwrap_or(vk::Result::ERROR_INITIALIZATION_FAILED)
    })
}

unsafe extern "system" fn create_buffer(
    handle: vk::Device,
    create_info: *const vk::BufferCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::Buffer,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device; arguments from the application.
        unsafe { on_nv_device(handle, |dev, nv| resources::create_buffer(dev, nv, create_info, allocator, out)) }
            .unwrap_or(vk::Result::ERROR_INITIALIZATION_FAILED)
    })
}

unsafe extern "system" fn device_buffer_memory_requirements(
    handle: vk::Device,
    info: *const vk::DeviceBufferMemoryRequirements,
    out: *mut vk::MemoryRequirements2,
) {
    guarded((), || {
        // SAFETY: a live device; arguments from the application.
        unsafe {
            on_nv_device(handle, |dev, nv| {
                if let Some(next) = nv.marking.as_ref().and_then(|m| m.requirement_queries().buffer) {
                    resources::device_buffer_memory_requirements(dev, nv, next, info, out)
                }
            })
        };
    })
}

unsafe extern "system" fn device_image_memory_requirements(
    handle: vk::Device,
    info: *const vk::DeviceImageMemoryRequirements,
    out: *mut vk::MemoryRequirements2,
) {
    guarded((), || {
        // SAFETY: a live device; arguments from the application.
        unsafe {
            on_nv_device(handle, |dev, nv| {
                if let Some(next) = nv.marking.as_ref().and_then(|m| m.requirement_queries().image) {
                    resources::device_image_memory_requirements(dev, nv, next, info, out)
                }
            })
        };
    })
}

unsafe extern "system" fn allocate_memory(
    handle: vk::Device,
    allocate_info: *const vk::MemoryAllocateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::DeviceMemory,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device; arguments from the application.
        unsafe { on_nv_device(handle, |dev, nv| resources::allocate_memory(dev, nv, allocate_info, allocator, out)) }
            .unwrap_or(vk::Result::ERROR_INITIALIZATION_FAILED)
    })
}

/// Runs `call` with the state of `handle`'s device and its VK_NV_dedicated_allocation state;
/// `None` where the layer does not implement the extension there.
///
/// # Safety
/// `handle` must be a live device.
unsafe fn on_dedicated_device<R>(handle: vk::Device, call: impl FnOnce(&DeviceData, &Dedicated) -> R) -> Option<R> {
    // SAFETY: forwarded.
    unsafe { on_nv_device(handle, |dev, nv| nv.dedicated.as_ref().map(|d| call(dev, d))) }.flatten()
}

unsafe extern "system" fn bind_image_memory(
    handle: vk::Device,
    image: vk::Image,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device; arguments from the application.
        unsafe { on_dedicated_device(handle, |dev, d| resources::bind_image_memory(dev, d, image, memory, offset)) }
            .unwrap_or(vk::Result::ERROR_INITIALIZATION_FAILED)
    })
}

unsafe extern "system" fn bind_buffer_memory(
    handle: vk::Device,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    offset: vk::DeviceSize,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device; arguments from the application.
        unsafe { on_dedicated_device(handle, |dev, d| resources::bind_buffer_memory(dev, d, buffer, memory, offset)) }
            .unwrap_or(vk::Result::ERROR_INITIALIZATION_FAILED)
    })
}

unsafe extern "system" fn destroy_image(
    handle: vk::Device,
    image: vk::Image,
    allocator: *const vk::AllocationCallbacks,
) {
    guarded((), || {
        // SAFETY: a live device; arguments from the application. The handle leaves the map
        // before the driver may hand it out again.
        unsafe {
            on_dedicated_device(handle, |dev, d| {
                d.destroyed(Target::Image(image));
                (d.fns.destroy_image)(dev.handle, image, allocator)
            })
        };
    })
}

unsafe extern "system" fn destroy_buffer(
    handle: vk::Device,
    buffer: vk::Buffer,
    allocator: *const vk::AllocationCallbacks,
) {
    guarded((), || {
        // SAFETY: as in `destroy_image`.
        unsafe {
            on_dedicated_device(handle, |dev, d| {
                d.destroyed(Target::Buffer(buffer));
                (d.fns.destroy_buffer)(dev.handle, buffer, allocator)
            })
        };
    })
}

unsafe extern "system" fn free_memory(
    handle: vk::Device,
    memory: vk::DeviceMemory,
    allocator: *const vk::AllocationCallbacks,
) {
    guarded((), || {
        // SAFETY: as in `destroy_image`.
        unsafe {
            on_dedicated_device(handle, |dev, d| {
                d.freed(memory);
                (d.fns.free_memory)(dev.handle, memory, allocator)
            })
        };
    })
}
