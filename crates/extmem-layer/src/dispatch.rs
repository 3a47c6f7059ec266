//! Per-instance and per-device state, keyed by the loader's dispatch pointer.
//!
//! Every dispatchable handle (instance, physical device, device, queue, command buffer) starts
//! with a pointer to the loader's dispatch table; children share their parent's. Keying by that
//! pointer lets a physical device find its instance, and a queue its device, with no extra map.

use crate::ext::nv_dedicated_allocation::Dedicated;
use crate::loader::NextInstanceLink;
use crate::marking::Marking;
use crate::settings::Settings;
use ash::vk::{self, Handle};
use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

/// The loader's dispatch pointer of a dispatchable handle.
///
/// # Safety
/// `handle` must be a live dispatchable handle created through the loader.
pub unsafe fn dispatch_key<H: Handle>(handle: H) -> usize {
    // SAFETY: the loader's interface makes the first word of a dispatchable object its
    // dispatch table pointer.
    unsafe { *(handle.as_raw() as *const usize) }
}

/// A thread-safe map from dispatch key to shared state, read without a lock.
///
/// The state lives in a locked map (the owner, and the overflow past [`SLOTS`] live handles);
/// the first [`SLOTS`] entries are also published in a fixed array of atomic slots, which every
/// lookup scans with two atomic loads per slot and no lock. Writers (create and destroy, rare)
/// take the lock. A state is freed when its handle is destroyed; Vulkan forbids using a handle
/// during or after its destruction (host access to the instance or device must be externally
/// synchronized there), so no lookup can still be holding it.
pub struct Registry<T> {
    slots: [Slot<T>; SLOTS],
    map: LazyLock<RwLock<HashMap<usize, Arc<T>>>>,
}

/// How many live handles of one kind are found without a lock.
const SLOTS: usize = 32;

struct Slot<T> {
    key: AtomicUsize,
    value: AtomicPtr<T>,
}

/// A looked-up state: borrowed from a slot, or shared from the map.
pub enum Entry<T: 'static> {
    Slot(&'static T),
    Map(Arc<T>),
}

impl<T> std::ops::Deref for Entry<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Entry::Slot(t) => t,
            Entry::Map(t) => t,
        }
    }
}

impl<T> Registry<T> {
    const fn new() -> Self {
        Registry {
            slots: [const { Slot { key: AtomicUsize::new(0), value: AtomicPtr::new(std::ptr::null_mut()) } }; SLOTS],
            map: LazyLock::new(Default::default),
        }
    }
    /// Registers state under `key` (non-zero: a dispatch table pointer).
    pub fn insert(&self, key: usize, value: T) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let value = Arc::new(value);
        let ptr = Arc::as_ptr(&value) as *mut T;
        if let Some(old) = map.insert(key, value) {
            self.unpublish(key);
            drop(old);
        }
        if let Some(slot) = self.slots.iter().find(|s| s.key.load(Ordering::Relaxed) == 0) {
            slot.value.store(ptr, Ordering::Release);
            slot.key.store(key, Ordering::Release);
        }
    }
    /// The state under `key`.
    #[inline]
    pub fn get(&self, key: usize) -> Option<Entry<T>> {
        for slot in &self.slots {
            if slot.key.load(Ordering::Acquire) == key {
                let ptr = slot.value.load(Ordering::Acquire);
                if !ptr.is_null() {
                    // SAFETY: the map holds the `Arc` behind `ptr` until the handle is destroyed,
                    // which Vulkan forbids during any other use of it (see the type's notes).
                    return Some(Entry::Slot(unsafe { &*ptr }));
                }
            }
        }
        self.map.read().unwrap_or_else(|e| e.into_inner()).get(&key).cloned().map(Entry::Map)
    }
    /// Clears the slot of `key`, where it has one (the lock is held).
    fn unpublish(&self, key: usize) {
        if let Some(slot) = self.slots.iter().find(|s| s.key.load(Ordering::Relaxed) == key) {
            slot.key.store(0, Ordering::Release);
            slot.value.store(std::ptr::null_mut(), Ordering::Release);
        }
    }
    /// Takes the state under `key` out of the map. The map's storage goes with its last entry:
    /// the loader unloads the layer when the last instance is destroyed and loads it afresh for
    /// the next, and a static's heap storage outlives an unloaded library (it would be lost,
    /// once per load).
    pub fn remove(&self, key: usize) -> Option<Arc<T>> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.unpublish(key);
        let value = map.remove(&key);
        if map.is_empty() {
            *map = HashMap::new();
        }
        value
    }
}

#[cfg(test)]
impl<T> Registry<T> {
    fn capacity(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::{Registry, SLOTS};
    use std::sync::atomic::Ordering;

    #[test]
    fn storage_goes_with_the_last_entry() {
        let registry: Registry<u32> = Registry::new();
        registry.insert(1, 10);
        registry.insert(2, 20);
        assert_eq!(registry.remove(1).as_deref(), Some(&10));
        assert!(registry.capacity() > 0, "one entry left");
        assert_eq!(registry.remove(2).as_deref(), Some(&20));
        assert_eq!(registry.capacity(), 0, "no heap storage left behind");
        assert!(registry.remove(3).is_none());
        assert!(registry.get(1).is_none(), "a removed key is not found in its old slot");
    }

    #[test]
    fn lookups_past_the_slots_use_the_map() {
        let registry: Registry<usize> = Registry::new();
        for key in 1..=2 * SLOTS {
            registry.insert(key, key * 10);
        }
        for key in 1..=2 * SLOTS {
            assert_eq!(registry.get(key).as_deref(), Some(&(key * 10)));
        }
        // A freed slot is taken by the next insert.
        registry.remove(5);
        registry.insert(1000, 7);
        assert!(registry.slots.iter().any(|s| s.key.load(Ordering::Relaxed) == 1000));
        assert_eq!(registry.get(1000).as_deref(), Some(&7));
        assert!(registry.get(5).is_none());
    }
}

/// Every instance this layer sits in.
pub static INSTANCES: Registry<InstanceData> = Registry::new();
/// Every device this layer sits in.
pub static DEVICES: Registry<DeviceData> = Registry::new();

/// Loads a command from the next element of the chain as an optional typed pointer.
///
/// # Safety
/// `F` must be the `PFN_` type of `name`; `gipa` and `instance` must be valid together.
pub unsafe fn load_instance_fn<F: Copy>(
    gipa: vk::PFN_vkGetInstanceProcAddr,
    instance: vk::Instance,
    name: &CStr,
) -> Option<F> {
    // SAFETY: forwarded from the caller.
    let f = unsafe { gipa(instance, name.as_ptr()) }?;
    // SAFETY: a `PFN_vkVoidFunction` and every `PFN_` type are function pointers of one size.
    Some(unsafe { std::mem::transmute_copy::<unsafe extern "system" fn(), F>(&f) })
}

/// Like [`load_instance_fn`], for a device command.
///
/// # Safety
/// `F` must be the `PFN_` type of `name`; `gdpa` and `device` must be valid together.
pub unsafe fn load_device_fn<F: Copy>(gdpa: vk::PFN_vkGetDeviceProcAddr, device: vk::Device, name: &CStr) -> Option<F> {
    // SAFETY: forwarded from the caller.
    let f = unsafe { gdpa(device, name.as_ptr()) }?;
    // SAFETY: as in `load_instance_fn`.
    Some(unsafe { std::mem::transmute_copy::<unsafe extern "system" fn(), F>(&f) })
}

/// The next element's instance-level commands that the layer calls.
pub struct InstanceFns {
    pub destroy_instance: vk::PFN_vkDestroyInstance,
    pub enumerate_device_extension_properties: vk::PFN_vkEnumerateDeviceExtensionProperties,
    pub get_physical_device_properties: vk::PFN_vkGetPhysicalDeviceProperties,
    pub get_physical_device_image_format_properties: vk::PFN_vkGetPhysicalDeviceImageFormatProperties,
    /// The core command where the instance is 1.1+, else the KHR alias; absent on a 1.0
    /// instance without VK_KHR_get_physical_device_properties2.
    pub get_physical_device_image_format_properties2: Option<vk::PFN_vkGetPhysicalDeviceImageFormatProperties2>,
    /// The core command where the instance is 1.1+, else the KHR alias where enabled.
    pub get_physical_device_external_buffer_properties: Option<vk::PFN_vkGetPhysicalDeviceExternalBufferProperties>,
}

/// What the layer knows of one physical device, learnt once.
#[derive(Clone, Copy, Debug)]
pub struct PhysicalDeviceInfo {
    /// The device's `apiVersion`.
    pub api_version: u32,
    /// The driver exposes VK_NV_external_memory itself: pass everything through.
    pub nv_native: bool,
    /// The driver can back VK_NV_external_memory: KHR external memory, the platform's export
    /// extension, and an exportable image of a common format.
    pub nv_backed: bool,
    /// The driver exposes VK_KHR_maintenance4 (the requirement queries that need no object).
    pub maintenance4: bool,
    /// The driver exposes VK_NV_dedicated_allocation itself.
    pub dedicated_native: bool,
    /// The driver can back VK_NV_dedicated_allocation: core 1.1, or VK_KHR_dedicated_allocation
    /// with VK_KHR_get_memory_requirements2.
    pub dedicated_backed: bool,
}

impl PhysicalDeviceInfo {
    /// Whether the layer implements VK_NV_external_memory on this device under `settings`.
    pub fn implemented(&self, settings: &Settings) -> bool {
        settings.active() && self.nv_backed && (!self.nv_native || settings.force_on)
    }

    /// Whether the layer implements VK_NV_dedicated_allocation on this device under `settings`.
    pub fn dedicated_implemented(&self, settings: &Settings) -> bool {
        settings.active() && self.dedicated_backed && (!self.dedicated_native || settings.force_on)
    }
}

/// State of one instance.
pub struct InstanceData {
    /// The instance handle as the layer below knows it.
    pub handle: vk::Instance,
    /// The next element of the chain.
    pub next: NextInstanceLink,
    /// The next element's commands.
    pub fns: InstanceFns,
    /// The application's `apiVersion` (1.0 when it gave none).
    pub api_version: u32,
    /// The application enabled VK_NV_external_memory_capabilities and the layer implements it.
    pub emulates_nv_capabilities: bool,
    /// The layer's settings for this instance.
    pub settings: Settings,
    /// Learnt lazily, per physical device.
    pub physical_devices: Mutex<HashMap<vk::PhysicalDevice, PhysicalDeviceInfo>>,
}

/// State of one device.
pub struct DeviceData {
    /// The device handle as the layer below knows it.
    pub handle: vk::Device,
    /// The next element's `vkGetDeviceProcAddr`.
    pub next_get_device_proc_addr: vk::PFN_vkGetDeviceProcAddr,
    /// The next element's `vkDestroyDevice`.
    pub destroy_device: vk::PFN_vkDestroyDevice,
    /// The device's API version as the application sees it (its own and the device's lower one).
    pub api_version: u32,
    /// Commands of extensions the layer enabled below itself and the application did not: the
    /// layer answers NULL for them, as the driver would without the layer.
    pub hidden: Vec<&'static CStr>,
    /// The application enabled VK_KHR_maintenance4 (its command names are the layer's to answer).
    pub app_maintenance4: bool,
    /// Present when the application enabled an NV device extension the layer implements.
    pub nv: Option<NvDeviceFns>,
}

/// The next element's commands that the NV device extensions rewrite, and their state.
pub struct NvDeviceFns {
    pub create_image: vk::PFN_vkCreateImage,
    pub create_buffer: vk::PFN_vkCreateBuffer,
    pub allocate_memory: vk::PFN_vkAllocateMemory,
    /// VK_NV_external_memory: which resources are created external (see `marking`); it holds
    /// the device's `vkGetDevice{Buffer,Image}MemoryRequirements` too.
    pub marking: Option<Marking>,
    /// VK_NV_dedicated_allocation: the dedicated resources and memory.
    pub dedicated: Option<Dedicated>,
}

/// The extension names in a create info's `ppEnabledExtensionNames`.
///
/// # Safety
/// `names` must point to `count` valid NUL-terminated strings (or be null with `count` 0).
pub unsafe fn extension_names<'a>(names: *const *const c_char, count: u32) -> Vec<&'a CStr> {
    if names.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: forwarded from the caller.
    unsafe { std::slice::from_raw_parts(names, count as usize) }
        .iter()
        .filter(|p| !p.is_null())
        .map(|&p| unsafe { CStr::from_ptr(p) })
        .collect()
}
