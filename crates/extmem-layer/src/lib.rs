//! `VK_LAYER_EXTMEM_external_memory`: a Vulkan layer that implements
//! VK_NV_external_memory_capabilities and VK_NV_external_memory on any Vulkan 1.1+ driver with
//! VK_KHR_external_memory, by translating every NV structure and bit to its core equivalent.
//!
//! This file holds only the exported entry points (each forwards to a guarded function); the loader
//! interface is in `loader`, state in `dispatch`, name tables in `intercept`, chain rewriting
//! in `pnext` and each extension in `ext`.
#![allow(non_snake_case)]

mod device;
mod dispatch;
mod enumerate;
mod ext;
mod handle_types;
mod instance;
mod intercept;
mod loader;
mod log;
mod marking;
mod once_table;
mod pnext;
mod resources;
mod settings;

/// What the fuzz targets (`fuzz/` at the repository root) drive: the `pNext` chain rewriting.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::pnext::{find, nodes, ChainWithout};
}

use ash::vk;
use loader::{NegotiateLayerInterface, LAYER_INTERFACE_VERSION, LAYER_NEGOTIATE_INTERFACE_STRUCT};
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The layer's name, as its manifest gives it.
pub const LAYER_NAME: &CStr = c"VK_LAYER_EXTMEM_external_memory";

/// Runs `f`, turning a panic into `on_panic` so that no unwinding ever crosses into C.
fn guarded<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    // On a panic the hook has already printed the message.
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Loader–layer interface negotiation (interface version 2).
///
/// # Safety
/// Called by the loader with a valid `VkNegotiateLayerInterface`.
#[no_mangle]
pub unsafe extern "system" fn vkNegotiateLoaderLayerInterfaceVersion(
    negotiate: *mut NegotiateLayerInterface,
) -> vk::Result {
    guarded(vk::Result::ERROR_INITIALIZATION_FAILED, || {
        // SAFETY: checked for null; the loader owns the structure.
        let Some(n) = (unsafe { negotiate.as_mut() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        if n.s_type != LAYER_NEGOTIATE_INTERFACE_STRUCT || n.loader_layer_interface_version < 2 {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        }
        n.loader_layer_interface_version = n.loader_layer_interface_version.min(LAYER_INTERFACE_VERSION);
        // The internal functions, never the exported symbols (see `intercept`).
        n.pfn_get_instance_proc_addr = Some(intercept::get_instance_proc_addr);
        n.pfn_get_device_proc_addr = Some(intercept::get_device_proc_addr);
        n.pfn_get_physical_device_proc_addr = Some(intercept::get_physical_device_proc_addr);
        vk::Result::SUCCESS
    })
}

/// The layer's `vkGetInstanceProcAddr`.
///
/// # Safety
/// `name` must be null or a valid string; `instance` null or live.
#[no_mangle]
pub unsafe extern "system" fn vkGetInstanceProcAddr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { intercept::get_instance_proc_addr(instance, name) }
}

/// The layer's `vkGetDeviceProcAddr`.
///
/// # Safety
/// `name` must be null or a valid string; `device` live.
#[no_mangle]
pub unsafe extern "system" fn vkGetDeviceProcAddr(device: vk::Device, name: *const c_char) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { intercept::get_device_proc_addr(device, name) }
}

/// The layer's `vk_layerGetPhysicalDeviceProcAddr` (loader interface version 2).
///
/// # Safety
/// `name` must be null or a valid string; `instance` live.
#[no_mangle]
pub unsafe extern "system" fn vk_layerGetPhysicalDeviceProcAddr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { intercept::get_physical_device_proc_addr(instance, name) }
}
