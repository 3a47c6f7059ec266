//! The loader–layer interface (`vk_layer.h`, interface version 2).
//!
//! `ash` carries only the Vulkan registry, not the loader's private structures, so the few
//! that a layer needs are declared here, exactly as `vk_layer.h` lays them out.

use ash::vk;
use std::ffi::{c_char, c_void};

/// `PFN_GetPhysicalDeviceProcAddr` from `vk_layer.h`.
pub type PfnGetPhysicalDeviceProcAddr =
    unsafe extern "system" fn(vk::Instance, *const c_char) -> vk::PFN_vkVoidFunction;

/// `VkNegotiateLayerStructType::LAYER_NEGOTIATE_INTERFACE_STRUCT`.
pub const LAYER_NEGOTIATE_INTERFACE_STRUCT: i32 = 1;
/// The highest loader–layer interface version this layer implements.
pub const LAYER_INTERFACE_VERSION: u32 = 2;
/// `VkLayerFunction::VK_LAYER_LINK_INFO`.
const VK_LAYER_LINK_INFO: i32 = 0;

/// `VkNegotiateLayerInterface`.
#[repr(C)]
pub struct NegotiateLayerInterface {
    pub s_type: i32,
    pub p_next: *mut c_void,
    pub loader_layer_interface_version: u32,
    pub pfn_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    pub pfn_get_device_proc_addr: Option<vk::PFN_vkGetDeviceProcAddr>,
    pub pfn_get_physical_device_proc_addr: Option<PfnGetPhysicalDeviceProcAddr>,
}

/// `VkLayerInstanceLink`.
#[repr(C)]
pub struct LayerInstanceLink {
    pub p_next: *mut LayerInstanceLink,
    pub pfn_next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub pfn_next_get_physical_device_proc_addr: Option<PfnGetPhysicalDeviceProcAddr>,
}

/// The size of `VkLayerInstanceCreateInfo`: sType, pNext, function, and a union whose largest
/// member (`layerDevice`) holds two function pointers.
pub const LAYER_INSTANCE_CREATE_INFO_SIZE: usize = 24 + 2 * size_of::<usize>();

/// `VkLayerInstanceCreateInfo` and `VkLayerDeviceCreateInfo` share this layout; only the
/// `pLayerInfo` member of their union is used.
#[repr(C)]
struct LayerCreateInfo<L> {
    s_type: vk::StructureType,
    p_next: *const c_void,
    function: i32,
    p_layer_info: *mut L,
}

/// `VkLayerDeviceLink`.
#[repr(C)]
pub struct LayerDeviceLink {
    pub p_next: *mut LayerDeviceLink,
    pub pfn_next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub pfn_next_get_device_proc_addr: vk::PFN_vkGetDeviceProcAddr,
}

/// A loader link list node: instance or device.
trait Link {
    fn next(&self) -> *mut Self;
}
impl Link for LayerInstanceLink {
    fn next(&self) -> *mut Self {
        self.p_next
    }
}
impl Link for LayerDeviceLink {
    fn next(&self) -> *mut Self {
        self.p_next
    }
}

/// What the next element of the instance chain offers.
#[derive(Clone, Copy)]
pub struct NextInstanceLink {
    pub get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub get_physical_device_proc_addr: Option<PfnGetPhysicalDeviceProcAddr>,
}

/// What the next element of the device chain offers.
#[derive(Clone, Copy)]
pub struct NextDeviceLink {
    pub get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub get_device_proc_addr: vk::PFN_vkGetDeviceProcAddr,
}

/// Finds the loader's link info in a create-info chain and advances it past this layer, so
/// that the next layer finds its own link when we call down. Returns this layer's link.
///
/// # Safety
/// `p_next` must be a valid Vulkan `pNext` chain. The link structure belongs to the loader,
/// not the application: advancing it is how the interface is defined to work.
unsafe fn advance<L: Link>(p_next: *const c_void, s_type: vk::StructureType) -> Option<&'static L> {
    let mut node = p_next as *const vk::BaseInStructure;
    while !node.is_null() {
        // SAFETY: every node of a valid chain starts with a `VkBaseInStructure`.
        let base = unsafe { &*node };
        if base.s_type == s_type {
            // SAFETY: the sType says the node is a loader create info with this layout.
            let info = unsafe { &mut *(node as *mut LayerCreateInfo<L>) };
            if info.function == VK_LAYER_LINK_INFO && !info.p_layer_info.is_null() {
                // SAFETY: non-null and owned by the loader for the whole create call.
                let link = unsafe { &*info.p_layer_info };
                info.p_layer_info = link.next();
                return Some(link);
            }
        }
        node = base.p_next;
    }
    None
}

/// Takes this layer's instance link out of `vkCreateInstance`'s chain.
///
/// # Safety
/// `create_info` must be a valid `VkInstanceCreateInfo` handed to a layer by the loader.
pub unsafe fn take_instance_link(create_info: &vk::InstanceCreateInfo) -> Option<NextInstanceLink> {
    // SAFETY: forwarded from the caller.
    let link: &LayerInstanceLink =
        unsafe { advance(create_info.p_next, vk::StructureType::LOADER_INSTANCE_CREATE_INFO) }?;
    Some(NextInstanceLink {
        get_instance_proc_addr: link.pfn_next_get_instance_proc_addr,
        get_physical_device_proc_addr: link.pfn_next_get_physical_device_proc_addr,
    })
}

/// Takes this layer's device link out of `vkCreateDevice`'s chain.
///
/// # Safety
/// `create_info` must be a valid `VkDeviceCreateInfo` handed to a layer by the loader.
pub unsafe fn take_device_link(create_info: &vk::DeviceCreateInfo) -> Option<NextDeviceLink> {
    // SAFETY: forwarded from the caller.
    let link: &LayerDeviceLink = unsafe { advance(create_info.p_next, vk::StructureType::LOADER_DEVICE_CREATE_INFO) }?;
    Some(NextDeviceLink {
        get_instance_proc_addr: link.pfn_next_get_instance_proc_addr,
        get_device_proc_addr: link.pfn_next_get_device_proc_addr,
    })
}
