//! Reading and rewriting `pNext` chains without touching the application's memory.
//!
//! The application's structures are `const`: to take an NV structure out of a chain, every
//! node in front of it is copied (with its `pNext` re-pointed) into storage the layer owns,
//! and the nodes after it are shared as they are.

use ash::vk;
use ash::vk::TaggedStructure;
use std::ffi::c_void;

/// Iterates over the nodes of a chain.
///
/// # Safety
/// `p_next` must be null or a valid Vulkan `pNext` chain that outlives the iterator.
pub unsafe fn nodes(p_next: *const c_void) -> impl Iterator<Item = *const vk::BaseInStructure<'static>> {
    let mut node = p_next as *const vk::BaseInStructure<'static>;
    std::iter::from_fn(move || {
        if node.is_null() {
            return None;
        }
        let current = node;
        // SAFETY: the caller promised a valid chain.
        node = unsafe { (*current).p_next };
        Some(current)
    })
}

/// Finds the first structure of type `T` in a chain.
///
/// # Safety
/// As for [`nodes`]; the returned reference lives as long as the chain.
pub unsafe fn find<'a, T: TaggedStructure>(p_next: *const c_void) -> Option<&'a T> {
    // SAFETY: forwarded from the caller; the sType identifies the node's type.
    unsafe { nodes(p_next) }
        .find(|&n| unsafe { (*n).s_type } == T::STRUCTURE_TYPE)
        .map(|n| unsafe { &*(n as *const T) })
}

/// Sizes of the structures the specification allows in the chains this layer rewrites
/// (`VkImageCreateInfo`, `VkMemoryAllocateInfo`, and `VkInstanceCreateInfo`'s, which loses
/// the layer's own `VkLayerSettingsCreateInfoEXT`; `VkDeviceCreateInfo`'s is never rewritten).
/// A node of any other type cannot be copied.
fn struct_size(s_type: vk::StructureType) -> Option<usize> {
    if s_type == vk::StructureType::LOADER_INSTANCE_CREATE_INFO {
        return Some(crate::loader::LAYER_INSTANCE_CREATE_INFO_SIZE);
    }
    macro_rules! sizes {
        ($($t:ident),* $(,)?) => {
            $(if s_type == vk::$t::STRUCTURE_TYPE { return Some(size_of::<vk::$t>()); })*
        };
    }
    sizes!(
        // VkImageCreateInfo
        DedicatedAllocationImageCreateInfoNV,
        ExternalMemoryImageCreateInfo,
        ExternalMemoryImageCreateInfoNV,
        ImageCompressionControlEXT,
        ImageDrmFormatModifierExplicitCreateInfoEXT,
        ImageDrmFormatModifierListCreateInfoEXT,
        ImageFormatListCreateInfo,
        ImageStencilUsageCreateInfo,
        ImageSwapchainCreateInfoKHR,
        OpaqueCaptureDescriptorDataCreateInfoEXT,
        OpticalFlowImageFormatInfoNV,
        VideoProfileListInfoKHR,
        ExternalFormatANDROID,
        // VkMemoryAllocateInfo
        DedicatedAllocationMemoryAllocateInfoNV,
        ExportMemoryAllocateInfo,
        ExportMemoryAllocateInfoNV,
        ExportMemoryWin32HandleInfoKHR,
        ExportMemoryWin32HandleInfoNV,
        ImportMemoryFdInfoKHR,
        ImportMemoryHostPointerInfoEXT,
        ImportMemoryWin32HandleInfoKHR,
        ImportMemoryWin32HandleInfoNV,
        MemoryAllocateFlagsInfo,
        MemoryDedicatedAllocateInfo,
        MemoryOpaqueCaptureAddressAllocateInfo,
        MemoryPriorityAllocateInfoEXT,
        // VkInstanceCreateInfo
        DebugReportCallbackCreateInfoEXT,
        DebugUtilsMessengerCreateInfoEXT,
        DirectDriverLoadingListLUNARG,
        ExportMetalObjectCreateInfoEXT,
        LayerSettingsCreateInfoEXT,
        ValidationFeaturesEXT,
        ValidationFlagsEXT,
    );
    None
}

/// A chain with one node removed, held in storage of the layer's own.
pub struct ChainWithout {
    /// Copies of the nodes in front of the removed one, in order; 8-byte aligned storage.
    copies: Vec<Box<[u64]>>,
    /// Where the chain continues after the copies (the removed node's successor).
    tail: *const c_void,
}

impl ChainWithout {
    /// Copies `p_next` up to the node `remove` and skips it. Returns `None` when a node in front
    /// of it is of a type whose size the layer does not know.
    ///
    /// # Safety
    /// `p_next` must be a valid chain that contains `remove` and outlives the result.
    pub unsafe fn new(p_next: *const c_void, remove: *const vk::BaseInStructure) -> Option<Self> {
        let mut copies = Vec::new();
        // SAFETY: forwarded from the caller.
        for node in unsafe { nodes(p_next) } {
            if node == remove {
                // SAFETY: `remove` is a node of the chain.
                let tail = unsafe { (*remove).p_next } as *const c_void;
                let mut chain = ChainWithout { copies, tail };
                chain.link();
                return Some(chain);
            }
            // SAFETY: `node` is valid; its sType tells its size (checked against the table).
            let size = struct_size(unsafe { (*node).s_type })?;
            let mut storage = vec![0u64; size.div_ceil(8)].into_boxed_slice();
            // SAFETY: `size` bytes are readable at `node` and writable in `storage`.
            unsafe { std::ptr::copy_nonoverlapping(node as *const u8, storage.as_mut_ptr() as *mut u8, size) };
            copies.push(storage);
        }
        None
    }

    /// Points each copy at the next one and the last at the tail.
    fn link(&mut self) {
        let mut next = self.tail;
        for copy in self.copies.iter_mut().rev() {
            let base = copy.as_mut_ptr() as *mut vk::BaseOutStructure;
            // SAFETY: each copy starts with a `VkBaseOutStructure` header.
            unsafe { (*base).p_next = next as *mut vk::BaseOutStructure };
            next = base as *const c_void;
        }
    }

    /// The head of the rewritten chain.
    pub fn head(&self) -> *const c_void {
        self.copies.first().map_or(self.tail, |c| c.as_ptr() as *const c_void)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_middle_node_without_touching_the_original() {
        let mut last = vk::MemoryPriorityAllocateInfoEXT::default().priority(0.5);
        let mut nv = vk::ExportMemoryAllocateInfoNV::default();
        let mut flags = vk::MemoryAllocateFlagsInfo::default().device_mask(3);
        nv.p_next = &mut last as *mut _ as *const c_void;
        flags.p_next = &mut nv as *mut _ as *const c_void;
        let head = &flags as *const _ as *const c_void;

        let chain = unsafe { ChainWithout::new(head, &nv as *const _ as *const _) }.unwrap();
        let types: Vec<_> = unsafe { nodes(chain.head()) }.map(|n| unsafe { (*n).s_type }).collect();
        assert_eq!(
            types,
            [vk::StructureType::MEMORY_ALLOCATE_FLAGS_INFO, vk::StructureType::MEMORY_PRIORITY_ALLOCATE_INFO_EXT]
        );
        let copy: &vk::MemoryAllocateFlagsInfo = unsafe { find(chain.head()) }.unwrap();
        assert_eq!(copy.device_mask, 3);
        // The application's chain still holds the NV node.
        assert!(unsafe { find::<vk::ExportMemoryAllocateInfoNV>(head) }.is_some());
    }

    #[test]
    fn removing_the_first_node_copies_nothing() {
        let nv = vk::ExportMemoryAllocateInfoNV::default();
        let head = &nv as *const _ as *const c_void;
        let chain = unsafe { ChainWithout::new(head, head as *const _) }.unwrap();
        assert!(chain.head().is_null());
    }

    #[test]
    fn unknown_predecessor_is_refused() {
        let mut nv = vk::ExportMemoryAllocateInfoNV::default();
        let odd = vk::PhysicalDeviceFeatures2 { p_next: &mut nv as *mut _ as *mut c_void, ..Default::default() };
        let head = &odd as *const _ as *const c_void;
        assert!(unsafe { ChainWithout::new(head, &nv as *const _ as *const _) }.is_none());
    }
}
