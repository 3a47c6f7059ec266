//! The resource commands on a device where the layer implements an NV device extension
//! (`vkCreate{Image,Buffer}`, `vkAllocateMemory`, the binds, destroys and frees, the requirement
//! queries): each extension's rewrite applied in turn, VK_NV_dedicated_allocation's first.

use crate::dispatch::{DeviceData, NvDeviceFns};
use crate::ext::nv_dedicated_allocation::{self as nv_ded, Target};
use crate::ext::nv_external_memory::{image_info_down, memory_info_down, with_replaced};
use crate::handle_types::MARK;
use crate::pnext;
use ash::vk;
use std::ffi::c_void;

/// `vkCreateImage`.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn create_image(
    dev: &DeviceData,
    nv: &NvDeviceFns,
    create_info: *const vk::ImageCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    image: *mut vk::Image,
) -> vk::Result {
    if create_info.is_null() || image.is_null() {
        return vk::Result::ERROR_VALIDATION_FAILED_EXT;
    }
    // SAFETY: non-null and valid per the caller.
    let ci = unsafe { &*create_info };
    // SAFETY: a valid create info; it goes down as the layer made it.
    let r = unsafe { image_info_down(nv, ci, |down| (nv.create_image)(dev.handle, down, allocator, image)) }
        .unwrap_or_else(|e| e);
    if let Some(ded) = nv.dedicated.as_ref().filter(|_| r == vk::Result::SUCCESS) {
        // SAFETY: the application's chain is valid; the image was just created.
        if unsafe { pnext::find::<vk::DedicatedAllocationImageCreateInfoNV>(ci.p_next) }
            .is_some_and(|d| d.dedicated_allocation == vk::TRUE)
        {
            // SAFETY: as above.
            ded.created(Target::Image(unsafe { *image }), unsafe { nv_ded::image_params(ci) });
        }
    }
    r
}

/// `vkCreateBuffer`.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn create_buffer(
    dev: &DeviceData,
    nv: &NvDeviceFns,
    create_info: *const vk::BufferCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    buffer: *mut vk::Buffer,
) -> vk::Result {
    if create_info.is_null() || buffer.is_null() {
        return vk::Result::ERROR_VALIDATION_FAILED_EXT;
    }
    // SAFETY: non-null and valid per the caller.
    let ci = unsafe { &*create_info };
    // SAFETY: a valid create info; it goes down as the layer made it.
    let r = unsafe { buffer_info_down(nv, ci, |down| (nv.create_buffer)(dev.handle, down, allocator, buffer)) };
    if let Some(ded) = nv.dedicated.as_ref().filter(|_| r == vk::Result::SUCCESS) {
        // SAFETY: the application's chain is valid; the buffer was just created.
        if unsafe { pnext::find::<vk::DedicatedAllocationBufferCreateInfoNV>(ci.p_next) }
            .is_some_and(|d| d.dedicated_allocation == vk::TRUE)
        {
            // SAFETY: as above.
            ded.created(Target::Buffer(unsafe { *buffer }), unsafe { nv_ded::buffer_params(ci) });
        }
    }
    r
}

/// `vkAllocateMemory`: `VkDedicatedAllocationMemoryAllocateInfoNV` checked and translated,
/// then `VkExportMemoryAllocateInfoNV`.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn allocate_memory(
    dev: &DeviceData,
    nv: &NvDeviceFns,
    allocate_info: *const vk::MemoryAllocateInfo,
    allocator: *const vk::AllocationCallbacks,
    memory: *mut vk::DeviceMemory,
) -> vk::Result {
    if allocate_info.is_null() || memory.is_null() {
        return vk::Result::ERROR_VALIDATION_FAILED_EXT;
    }
    // SAFETY: non-null and valid per the caller.
    let ai = unsafe { &*allocate_info };
    let allocate = |down: &vk::MemoryAllocateInfo| {
        // SAFETY: a valid allocate info as the layer made it.
        unsafe { memory_info_down(nv, down, |down| (nv.allocate_memory)(dev.handle, down, allocator, memory)) }
            .unwrap_or_else(|e| e)
    };
    // SAFETY: the application's chain is valid.
    let dedicated = nv.dedicated.as_ref().and_then(|ded| {
        unsafe { pnext::find::<vk::DedicatedAllocationMemoryAllocateInfoNV>(ai.p_next) }.map(|info| (ded, info))
    });
    let Some((ded, info)) = dedicated else { return allocate(ai) };
    // SAFETY: a live device; the handles are valid or null per the structure's implicit rules.
    if let Err(e) = unsafe { ded.check_allocation(dev.handle, info, ai.allocation_size) } {
        return e;
    }
    let mut core = vk::MemoryDedicatedAllocateInfo::default().image(info.image).buffer(info.buffer);
    let nothing = info.image == vk::Image::null() && info.buffer == vk::Buffer::null();
    // A core structure of the application's own stays the only one.
    // SAFETY: the application's chain is valid.
    let has_core = unsafe { pnext::find::<vk::MemoryDedicatedAllocateInfo>(ai.p_next) }.is_some();
    // SAFETY: the NV node is in the application's chain.
    let r = unsafe {
        with_replaced(ai.p_next, info as *const _ as *const _, &mut core, nothing || has_core, |p_next| {
            allocate(&vk::MemoryAllocateInfo { p_next, ..*ai })
        })
    };
    if r == vk::Result::SUCCESS {
        // SAFETY: the memory was just allocated.
        ded.allocated(unsafe { *memory }, info);
    }
    r
}

/// `vkBindImageMemory` on a device with VK_NV_dedicated_allocation implemented.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn bind_image_memory(
    dev: &DeviceData,
    ded: &nv_ded::Dedicated,
    image: vk::Image,
    memory: vk::DeviceMemory,
    offset: u64,
) -> vk::Result {
    if ded.tracking() {
        if let Err(e) = ded.check_image_bind(image, memory, offset) {
            return e;
        }
    }
    // SAFETY: forwarded.
    unsafe { (ded.fns.bind_image_memory)(dev.handle, image, memory, offset) }
}

/// `vkBindBufferMemory` on a device with VK_NV_dedicated_allocation implemented.
///
/// # Safety
/// Arguments as the command takes them.
pub unsafe fn bind_buffer_memory(
    dev: &DeviceData,
    ded: &nv_ded::Dedicated,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    offset: u64,
) -> vk::Result {
    if ded.tracking() {
        if let Err(e) = ded.check_buffer_bind(buffer, memory, offset) {
            return e;
        }
    }
    // SAFETY: forwarded.
    unsafe { (ded.fns.bind_buffer_memory)(dev.handle, buffer, memory, offset) }
}

/// Calls `call` with a buffer create info as the layer passes it down (marked where it can be).
///
/// # Safety
/// `ci` must be a valid create info.
pub unsafe fn buffer_info_down<R>(
    nv: &NvDeviceFns,
    ci: &vk::BufferCreateInfo,
    call: impl FnOnce(&vk::BufferCreateInfo) -> R,
) -> R {
    // VK_NV_dedicated_allocation: its structure leaves the chain first.
    if nv.dedicated.is_some() {
        // SAFETY: the application's chain is valid.
        if let Some(node) = unsafe { pnext::find::<vk::DedicatedAllocationBufferCreateInfoNV>(ci.p_next) } {
            // SAFETY: the node is in the chain, which outlives the call.
            if let Some(rest) = unsafe { pnext::ChainWithout::new(ci.p_next, node as *const _ as *const _) } {
                let down = vk::BufferCreateInfo { p_next: rest.head(), ..*ci };
                // SAFETY: a valid create info whose chain lives as long as `rest`.
                return unsafe { marked_buffer_info_down(nv, &down, call) };
            }
        }
    }
    // SAFETY: forwarded.
    unsafe { marked_buffer_info_down(nv, ci, call) }
}

/// [`buffer_info_down`] for the marking alone.
///
/// # Safety
/// `ci` must be a valid create info.
unsafe fn marked_buffer_info_down<R>(
    nv: &NvDeviceFns,
    ci: &vk::BufferCreateInfo,
    call: impl FnOnce(&vk::BufferCreateInfo) -> R,
) -> R {
    // SAFETY: a valid create info.
    if !nv.marking.as_ref().is_some_and(|m| unsafe { m.buffer(ci) }) {
        return call(ci);
    }
    // The core structure goes in front; the application's chain is shared as it is.
    let mut external =
        vk::ExternalMemoryBufferCreateInfo { p_next: ci.p_next, ..Default::default() }.handle_types(MARK);
    let mut down = *ci;
    down.p_next = &mut external as *mut _ as *const c_void;
    call(&down)
}

/// `vkGetDeviceBufferMemoryRequirements` (1.3 / VK_KHR_maintenance4): answers for the buffer
/// as `vkCreateBuffer` would create it, marked or not.
///
/// # Safety
/// Arguments as the command takes them; `next` the next element's command.
pub unsafe fn device_buffer_memory_requirements(
    dev: &DeviceData,
    nv: &NvDeviceFns,
    next: vk::PFN_vkGetDeviceBufferMemoryRequirements,
    info: *const vk::DeviceBufferMemoryRequirements,
    out: *mut vk::MemoryRequirements2,
) {
    // SAFETY: checked for null; valid per the caller.
    match unsafe { info.as_ref() }.filter(|i| !i.p_create_info.is_null()) {
        // SAFETY: as above.
        Some(i) => unsafe {
            buffer_info_down(nv, &*i.p_create_info, |down| {
                let mut info = *i;
                info.p_create_info = down;
                next(dev.handle, &info, out)
            })
        },
        // SAFETY: invalid input goes down untouched, as without the layer.
        None => unsafe { next(dev.handle, info, out) },
    }
}

/// `vkGetDeviceImageMemoryRequirements` (1.3 / VK_KHR_maintenance4): answers for the image as
/// `vkCreateImage` would create it (NV structure translated, or marked).
///
/// # Safety
/// Arguments as the command takes them; `next` the next element's command.
pub unsafe fn device_image_memory_requirements(
    dev: &DeviceData,
    nv: &NvDeviceFns,
    next: vk::PFN_vkGetDeviceImageMemoryRequirements,
    info: *const vk::DeviceImageMemoryRequirements,
    out: *mut vk::MemoryRequirements2,
) {
    // SAFETY: checked for null; valid per the caller.
    if let Some(i) = unsafe { info.as_ref() }.filter(|i| !i.p_create_info.is_null()) {
        // SAFETY: as above.
        let answered = unsafe {
            image_info_down(nv, &*i.p_create_info, |down| {
                let mut info = *i;
                info.p_create_info = down;
                next(dev.handle, &info, out)
            })
        };
        if answered.is_ok() {
            return;
        }
    }
    // SAFETY: invalid input goes down untouched, as without the layer.
    unsafe { next(dev.handle, info, out) }
}
