//! Name → function tables for `vkGet*ProcAddr`, and the hooks C calls, each behind a panic
//! guard. A command the layer does not intercept resolves to the next element's own pointer,
//! so it costs nothing at call time.

use crate::dispatch::{dispatch_key, DEVICES, INSTANCES};
use crate::ext::{nv_external_memory as nv_mem, nv_external_memory_capabilities as nv_caps};
use crate::{device, guarded, instance};
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
    match name {
        b"vkDestroyDevice\0" => void_fn!(destroy_device as vk::PFN_vkDestroyDevice),
        b"vkCreateImage\0" if dev.nv.is_some() => void_fn!(create_image as vk::PFN_vkCreateImage),
        b"vkCreateBuffer\0" if dev.nv.is_some() => void_fn!(create_buffer as vk::PFN_vkCreateBuffer),
        b"vkGetDeviceBufferMemoryRequirements\0" | b"vkGetDeviceBufferMemoryRequirementsKHR\0"
            if dev.nv.as_ref().is_some_and(|nv| nv.device_buffer_memory_requirements.is_some()) =>
        {
            void_fn!(device_buffer_memory_requirements as vk::PFN_vkGetDeviceBufferMemoryRequirements)
        }
        b"vkGetDeviceImageMemoryRequirements\0" | b"vkGetDeviceImageMemoryRequirementsKHR\0"
            if dev.nv.as_ref().is_some_and(|nv| nv.device_image_memory_requirements.is_some()) =>
        {
            void_fn!(device_image_memory_requirements as vk::PFN_vkGetDeviceImageMemoryRequirements)
        }
        b"vkAllocateMemory\0" if dev.nv.is_some() => void_fn!(allocate_memory as vk::PFN_vkAllocateMemory),
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

unsafe extern "system" fn create_image(
    handle: vk::Device,
    create_info: *const vk::ImageCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::Image,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device on which the NV extension is implemented.
        match DEVICES.get(unsafe { dispatch_key(handle) }) {
            Some(dev) => match &dev.nv {
                // SAFETY: arguments from the application.
                Some(nv) => unsafe { nv_mem::create_image(&dev, nv, create_info, allocator, out) },
                None => vk::Result::ERROR_INITIALIZATION_FAILED,
            },
            None => vk::Result::ERROR_INITIALIZATION_FAILED,
        }
    })
}

unsafe extern "system" fn create_buffer(
    handle: vk::Device,
    create_info: *const vk::BufferCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::Buffer,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device on which the NV extension is implemented.
        match DEVICES.get(unsafe { dispatch_key(handle) }) {
            Some(dev) => match &dev.nv {
                // SAFETY: arguments from the application.
                Some(nv) => unsafe { nv_mem::create_buffer(&dev, nv, create_info, allocator, out) },
                None => vk::Result::ERROR_INITIALIZATION_FAILED,
            },
            None => vk::Result::ERROR_INITIALIZATION_FAILED,
        }
    })
}

unsafe extern "system" fn device_buffer_memory_requirements(
    handle: vk::Device,
    info: *const vk::DeviceBufferMemoryRequirements,
    out: *mut vk::MemoryRequirements2,
) {
    guarded((), || {
        // SAFETY: a live device.
        let Some(dev) = DEVICES.get(unsafe { dispatch_key(handle) }) else { return };
        if let Some(nv) = &dev.nv {
            if let Some(next) = nv.device_buffer_memory_requirements {
                // SAFETY: arguments from the application.
                unsafe { nv_mem::device_buffer_memory_requirements(&dev, nv, next, info, out) }
            }
        }
    })
}

unsafe extern "system" fn device_image_memory_requirements(
    handle: vk::Device,
    info: *const vk::DeviceImageMemoryRequirements,
    out: *mut vk::MemoryRequirements2,
) {
    guarded((), || {
        // SAFETY: a live device.
        let Some(dev) = DEVICES.get(unsafe { dispatch_key(handle) }) else { return };
        if let Some(nv) = &dev.nv {
            if let Some(next) = nv.device_image_memory_requirements {
                // SAFETY: arguments from the application.
                unsafe { nv_mem::device_image_memory_requirements(&dev, nv, next, info, out) }
            }
        }
    })
}

unsafe extern "system" fn allocate_memory(
    handle: vk::Device,
    allocate_info: *const vk::MemoryAllocateInfo,
    allocator: *const vk::AllocationCallbacks,
    out: *mut vk::DeviceMemory,
) -> vk::Result {
    guarded(vk::Result::ERROR_OUT_OF_HOST_MEMORY, || {
        // SAFETY: a live device on which the NV extension is implemented.
        match DEVICES.get(unsafe { dispatch_key(handle) }) {
            Some(dev) => match &dev.nv {
                // SAFETY: arguments from the application.
                Some(nv) => unsafe { nv_mem::allocate_memory(&dev, nv, allocate_info, allocator, out) },
                None => vk::Result::ERROR_INITIALIZATION_FAILED,
            },
            None => vk::Result::ERROR_INITIALIZATION_FAILED,
        }
    })
}
