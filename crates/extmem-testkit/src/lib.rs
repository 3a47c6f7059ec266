//! Test support: real Vulkan instances through the system loader, with the extmem layer and the
//! Khronos validation layer in a chosen order, and every validation message collected so that a
//! test fails on any of them.

use ash::vk;
use extmem::validation::ValidationLog;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::Once;

/// The extmem layer's name.
pub const LAYER: &CStr = extmem::layer::LAYER_NAME;
/// The Khronos validation layer's name.
pub const VALIDATION: &CStr = extmem::validation::VALIDATION_LAYER;

/// The folder holding the layer's library and manifest (see [`extmem::layer::locate`]).
pub fn layer_dir() -> PathBuf {
    let dir = extmem::layer::locate().unwrap_or_else(|| {
        panic!(
            "no {} beside or above the test binary: build the layer first (cargo build -p extmem-layer)",
            extmem::layer::MANIFEST
        )
    });
    assert!(
        dir.join("libVkLayer_extmem.so").is_file(),
        "{} has the manifest but not libVkLayer_extmem.so: build the layer for this profile first (cargo build [--release] -p extmem-layer)",
        dir.display()
    );
    dir
}

/// Points the loader at the layer (once per process, before any instance exists).
pub fn init_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = layer_dir();
        // SAFETY: runs once, before this process creates any Vulkan object or thread that
        // reads the environment; other test threads block on the `Once` until it is done.
        unsafe {
            std::env::set_var("VK_ADD_LAYER_PATH", &dir);
            if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
                std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
            }
            // Layers the user enabled for everything would change what the tests see.
            std::env::remove_var("VK_INSTANCE_LAYERS");
            std::env::remove_var("VK_LOADER_LAYERS_ENABLE");
        }
    });
}

/// Where the Khronos validation layer sits relative to the extmem layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Validation {
    /// No validation (for calls that are invalid on purpose, or pointer comparisons).
    Off,
    /// Nearest the application: checks the application's NV usage against the specification.
    AboveLayer,
    /// Between the layer and the driver: checks the KHR calls the layer makes.
    BelowLayer,
}

/// What instance to make.
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    /// Enable the extmem layer.
    pub layer: bool,
    /// Where validation goes.
    pub validation: Validation,
    /// The application's `apiVersion`.
    pub api_version: u32,
    /// Instance extensions to enable.
    pub extensions: Vec<&'static CStr>,
}

impl InstanceSpec {
    /// An API 1.3 application that enables VK_NV_external_memory_capabilities through the layer.
    pub fn nv(validation: Validation) -> Self {
        InstanceSpec {
            layer: true,
            validation,
            api_version: vk::API_VERSION_1_3,
            extensions: vec![ash::nv::external_memory_capabilities::NAME],
        }
    }
    /// An API 1.3 application without the layer or extensions.
    pub fn plain(validation: Validation) -> Self {
        InstanceSpec { layer: false, validation, api_version: vk::API_VERSION_1_3, extensions: vec![] }
    }
}

/// A live instance and what validation said about it.
pub struct TestInstance {
    /// The loader.
    pub entry: ash::Entry,
    /// The instance.
    pub instance: ash::Instance,
    log: Option<ValidationLog>,
}

impl TestInstance {
    /// Creates the instance; panics with the Vulkan error on failure.
    pub fn new(spec: &InstanceSpec) -> Self {
        Self::try_new(spec).unwrap_or_else(|e| panic!("vkCreateInstance({spec:?}): {e}"))
    }

    /// Creates the instance.
    pub fn try_new(spec: &InstanceSpec) -> Result<Self, vk::Result> {
        init_env();
        // SAFETY: loading the system's Vulkan loader.
        let entry = unsafe { ash::Entry::load() }.expect("libvulkan.so.1 (install libvulkan1)");
        let layers: Vec<*const i8> = match (spec.layer, spec.validation) {
            (true, Validation::AboveLayer) => vec![VALIDATION.as_ptr(), LAYER.as_ptr()],
            (true, Validation::BelowLayer) => vec![LAYER.as_ptr(), VALIDATION.as_ptr()],
            (true, Validation::Off) => vec![LAYER.as_ptr()],
            (false, Validation::Off) => vec![],
            (false, _) => vec![VALIDATION.as_ptr()],
        };
        let mut extensions: Vec<*const i8> = spec.extensions.iter().map(|e| e.as_ptr()).collect();
        let validating = spec.validation != Validation::Off;
        if validating {
            extensions.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let mut log = validating.then(ValidationLog::default);
        let mut messenger_info = log.as_ref().map(ValidationLog::create_info);
        let app = vk::ApplicationInfo::default().application_name(c"extmem-test").api_version(spec.api_version);
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&extensions);
        if let Some(m) = messenger_info.as_mut() {
            info = info.push_next(m);
        }
        // SAFETY: a valid create info.
        let instance = unsafe { entry.create_instance(&info, None) }?;
        if let Some(log) = log.as_mut() {
            log.install(&entry, &instance).expect("debug messenger");
        }
        Ok(TestInstance { entry, instance, log })
    }

    /// The first physical device (lavapipe on a machine without a GPU).
    pub fn physical_device(&self) -> vk::PhysicalDevice {
        // SAFETY: a live instance.
        let devices = unsafe { self.instance.enumerate_physical_devices() }.expect("physical devices");
        *devices.first().expect("no Vulkan device: install mesa-vulkan-drivers")
    }

    /// The validation messages seen so far.
    pub fn messages(&self) -> Vec<String> {
        self.log.as_ref().map(ValidationLog::messages).unwrap_or_default()
    }

    /// Destroys the instance and fails the test if validation said anything.
    pub fn finish(self) {
        let shared = self.log.as_ref().map(ValidationLog::shared);
        drop(self);
        let messages = shared.map(|m| m.lock().unwrap().clone()).unwrap_or_default();
        assert!(messages.is_empty(), "{} validation message(s):\n{}", messages.len(), messages.join("\n"));
    }
}

impl Drop for TestInstance {
    fn drop(&mut self) {
        // SAFETY: everything made from the instance is gone by now.
        unsafe {
            if let Some(log) = self.log.as_mut() {
                log.uninstall();
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// A device with one queue that can do transfers, and a command pool.
pub struct TestDevice {
    /// The device.
    pub device: ash::Device,
    /// The physical device it came from.
    pub physical_device: vk::PhysicalDevice,
    /// The queue family in use.
    pub queue_family: u32,
    /// The queue.
    pub queue: vk::Queue,
    pool: vk::CommandPool,
    /// The physical device's memory types.
    pub memory: vk::PhysicalDeviceMemoryProperties,
}

impl TestDevice {
    /// Creates a device with `extensions`; panics with the Vulkan error on failure.
    pub fn new(inst: &TestInstance, extensions: &[&CStr]) -> Self {
        Self::try_new(inst, extensions).unwrap_or_else(|e| panic!("vkCreateDevice({extensions:?}): {e}"))
    }

    /// Creates a device with `extensions`.
    pub fn try_new(inst: &TestInstance, extensions: &[&CStr]) -> Result<Self, vk::Result> {
        let pd = inst.physical_device();
        // SAFETY: a live physical device.
        let families = unsafe { inst.instance.get_physical_device_queue_family_properties(pd) };
        let queue_family = families
            .iter()
            .position(|f| {
                f.queue_flags.intersects(vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE | vk::QueueFlags::TRANSFER)
            })
            .expect("a queue family") as u32;
        let priorities = [1.0];
        let queues =
            [vk::DeviceQueueCreateInfo::default().queue_family_index(queue_family).queue_priorities(&priorities)];
        let names: Vec<*const i8> = extensions.iter().map(|e| e.as_ptr()).collect();
        let info = vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&names);
        // SAFETY: valid create info.
        let device = unsafe { inst.instance.create_device(pd, &info, None) }?;
        // SAFETY: live device; the family was requested.
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        let pool_info = vk::CommandPoolCreateInfo::default().queue_family_index(queue_family);
        // SAFETY: live device.
        let pool = unsafe { device.create_command_pool(&pool_info, None) }?;
        // SAFETY: live physical device.
        let memory = unsafe { inst.instance.get_physical_device_memory_properties(pd) };
        Ok(TestDevice { device, physical_device: pd, queue_family, queue, pool, memory })
    }

    /// A memory type index among `bits` with `flags`.
    pub fn memory_type(&self, bits: u32, flags: vk::MemoryPropertyFlags) -> u32 {
        (0..self.memory.memory_type_count)
            .find(|&i| bits & (1 << i) != 0 && self.memory.memory_types[i as usize].property_flags.contains(flags))
            .unwrap_or_else(|| panic!("no memory type in {bits:#b} with {flags:?}"))
    }

    /// Records commands with `record`, submits them and waits for them.
    pub fn submit_once(&self, record: impl FnOnce(vk::CommandBuffer)) {
        let d = &self.device;
        let alloc = vk::CommandBufferAllocateInfo::default().command_pool(self.pool).command_buffer_count(1);
        // SAFETY: live device and pool; the buffer is freed after the wait.
        unsafe {
            let cb = d.allocate_command_buffers(&alloc).expect("command buffer")[0];
            d.begin_command_buffer(
                cb,
                &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .expect("begin");
            record(cb);
            d.end_command_buffer(cb).expect("end");
            let fence = d.create_fence(&vk::FenceCreateInfo::default(), None).expect("fence");
            let cbs = [cb];
            d.queue_submit(self.queue, &[vk::SubmitInfo::default().command_buffers(&cbs)], fence).expect("submit");
            d.wait_for_fences(&[fence], true, u64::MAX).expect("wait");
            d.destroy_fence(fence, None);
            d.free_command_buffers(self.pool, &cbs);
        }
    }

    /// A host-visible buffer of `size` bytes, mapped, with its memory.
    pub fn host_buffer(&self, size: u64, usage: vk::BufferUsageFlags) -> HostBuffer {
        let d = &self.device;
        // SAFETY: live device; valid create and allocate infos.
        unsafe {
            let buffer =
                d.create_buffer(&vk::BufferCreateInfo::default().size(size).usage(usage), None).expect("buffer");
            let req = d.get_buffer_memory_requirements(buffer);
            let ty = self.memory_type(
                req.memory_type_bits,
                vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
            );
            let memory = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(ty),
                    None,
                )
                .expect("memory");
            d.bind_buffer_memory(buffer, memory, 0).expect("bind");
            let ptr = d.map_memory(memory, 0, size, vk::MemoryMapFlags::empty()).expect("map") as *mut u8;
            HostBuffer { buffer, memory, ptr, size: size as usize }
        }
    }

    /// Destroys a buffer made by [`TestDevice::host_buffer`].
    pub fn destroy_host_buffer(&self, b: HostBuffer) {
        // SAFETY: no work on it is pending (submit_once waits).
        unsafe {
            self.device.destroy_buffer(b.buffer, None);
            self.device.free_memory(b.memory, None);
        }
    }
}

impl Drop for TestDevice {
    fn drop(&mut self) {
        // SAFETY: the tests free what they made on the device before dropping it.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_command_pool(self.pool, None);
            self.device.destroy_device(None);
        }
    }
}

/// A mapped host-visible buffer.
pub struct HostBuffer {
    /// The buffer.
    pub buffer: vk::Buffer,
    /// Its memory.
    pub memory: vk::DeviceMemory,
    ptr: *mut u8,
    size: usize,
}

impl HostBuffer {
    /// The mapped bytes.
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: mapped for `size` bytes for the buffer's life, coherent.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.size) }
    }
}

/// A byte pattern that differs at every offset and from run to run of `seed`.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8).collect()
}
