//! An instance and a device set up for sharing memory.

mod borrowed;
mod options;
mod setup;
mod submit;

pub use borrowed::{AppDevice, QueueAccess, QueueGuard};
pub(crate) use options::pick_queue_family;
pub use options::{ContextOptions, PathKind, QueueKind};
use setup::{pick_device, Partial};
use submit::Commands;
pub use submit::Submission;

use crate::error::{Error, Result, VkResultExt};
use crate::handle::HandleType;
use crate::layer::LAYER_NAME;
use crate::validation::{ValidationLog, VALIDATION_LAYER};
use ash::vk;
use std::ffi::{c_char, CStr};
use std::sync::{Arc, Mutex};

/// The device extensions a context enables when the device has them.
const OPTIONAL_EXTENSIONS: [&CStr; 5] = [
    ash::khr::external_semaphore_fd::NAME,
    ash::khr::external_fence_fd::NAME,
    ash::ext::external_memory_dma_buf::NAME,
    ash::ext::external_memory_host::NAME,
    // Device memory in use, for the soak benchmark's samples.
    ash::ext::memory_budget::NAME,
];

/// An instance, a physical device, a device and a queue, set up for sharing memory.
pub struct Context {
    entry: ash::Entry,
    instance: ash::Instance,
    physical_device: vk::PhysicalDevice,
    device: ash::Device,
    queue_family: u32,
    queue_flags: vk::QueueFlags,
    queue: vk::Queue,
    commands: Mutex<Commands>,
    memory_properties: vk::PhysicalDeviceMemoryProperties,
    device_name: String,
    device_uuid: [u8; 16],
    driver_uuid: [u8; 16],
    path: PathKind,
    extensions: Vec<&'static CStr>,
    memory_fd: ash::khr::external_memory_fd::Device,
    timeline: bool,
    validation: Option<ValidationLog>,
    ownership: Ownership,
}

/// Who owns the instance, device and queue.
enum Ownership {
    /// `Context::new` created them; the context destroys them.
    Owned,
    /// The application created them ([`Context::from_app`]); the context destroys only what
    /// it made itself (its command pool and fences).
    Borrowed(QueueAccess),
}

impl Context {
    /// Creates the instance and device. With [`PathKind::Nv`] the extmem layer must be visible
    /// to the loader (see [`crate::layer::add_to_loader_path`], or run under `extmem run`).
    pub fn new(options: &ContextOptions) -> Result<Arc<Context>> {
        // SAFETY: loads the system's Vulkan loader.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))?;
        // SAFETY: global queries.
        let layers = unsafe { entry.enumerate_instance_layer_properties() }.vk("vkEnumerateInstanceLayerProperties")?;
        let has_layer = |name: &CStr| layers.iter().any(|l| l.layer_name_as_c_str() == Ok(name));
        let mut layer_names: Vec<*const c_char> = Vec::new();
        let mut instance_extensions: Vec<*const c_char> = Vec::new();
        if options.path == PathKind::Nv {
            if !has_layer(LAYER_NAME) {
                return Err(Error::Layer(
                    "VK_LAYER_EXTMEM_external_memory is not visible to the Vulkan loader: build it \
                     (cargo build -p extmem-layer) and set VK_ADD_LAYER_PATH to the folder holding \
                     VkLayer_extmem.json (target/debug), or start the program with `extmem run`"
                        .into(),
                ));
            }
            layer_names.push(LAYER_NAME.as_ptr());
            instance_extensions.push(ash::nv::external_memory_capabilities::NAME.as_ptr());
        }
        let mut validation = None;
        if options.validation {
            if !has_layer(VALIDATION_LAYER) {
                return Err(Error::Unsupported(
                    "the Khronos validation layer is not installed (Debian: apt-get install vulkan-validationlayers)"
                        .into(),
                ));
            }
            // Below the extmem layer: it checks the core calls that reach the driver.
            layer_names.push(VALIDATION_LAYER.as_ptr());
            instance_extensions.push(ash::ext::debug_utils::NAME.as_ptr());
            validation = Some(ValidationLog::default());
        }
        let app_name = std::ffi::CString::new(options.app_name.clone()).unwrap_or_default();
        let app = vk::ApplicationInfo::default().application_name(&app_name).api_version(vk::API_VERSION_1_2);
        let mut messenger = validation.as_ref().map(|v| v.create_info());
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layer_names)
            .enabled_extension_names(&instance_extensions);
        if let Some(m) = messenger.as_mut() {
            info = info.push_next(m);
        }
        // SAFETY: a valid create info.
        let instance = unsafe { entry.create_instance(&info, None) }.vk("vkCreateInstance")?;
        // From here on, `Partial` destroys what exists if a later step fails.
        let mut partial = Partial { instance: Some(instance.clone()), validation, device: None };
        if let Some(v) = partial.validation.as_mut() {
            v.install(&entry, &instance).vk("vkCreateDebugUtilsMessengerEXT")?;
        }

        let physical_device = pick_device(&instance, options.device)?;
        // SAFETY: a live physical device.
        let (props, available) = unsafe {
            let props = instance.get_physical_device_properties(physical_device);
            let available = instance
                .enumerate_device_extension_properties(physical_device)
                .vk("vkEnumerateDeviceExtensionProperties")?;
            (props, available)
        };
        let device_name = props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if props.api_version < vk::API_VERSION_1_1 {
            return Err(Error::Unsupported(format!("{device_name} supports Vulkan 1.0 only; extmem needs 1.1")));
        }
        let offered = |name: &CStr| available.iter().any(|e| e.extension_name_as_c_str() == Ok(name));
        let mut extensions = vec![ash::khr::external_memory_fd::NAME];
        if !offered(extensions[0]) {
            return Err(Error::Unsupported(format!("{device_name} has no VK_KHR_external_memory_fd")));
        }
        if options.path == PathKind::Nv {
            if !offered(ash::nv::external_memory::NAME) {
                return Err(Error::Layer(format!(
                    "{device_name} does not offer VK_NV_external_memory through the layer"
                )));
            }
            extensions.push(ash::nv::external_memory::NAME);
        }
        extensions.extend(OPTIONAL_EXTENSIONS.into_iter().filter(|e| offered(e)));

        // SAFETY: a live physical device.
        let families = unsafe { instance.get_physical_device_queue_family_properties(physical_device) };
        let queue_family = pick_queue_family(&families, options.queue)
            .ok_or_else(|| Error::NoDevice(format!("{device_name} has no graphics or compute queue")))?;
        let priorities = [1.0];
        let queues =
            [vk::DeviceQueueCreateInfo::default().queue_family_index(queue_family).queue_priorities(&priorities)];
        let names: Vec<*const c_char> = extensions.iter().map(|e| e.as_ptr()).collect();
        // Timeline semaphores (core 1.2), for semaphore-synchronised hand-offs where the driver
        // can export them.
        let mut features12 = vk::PhysicalDeviceVulkan12Features::default();
        let timeline = props.api_version >= vk::API_VERSION_1_2 && {
            let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut features12);
            // SAFETY: a live physical device.
            unsafe { instance.get_physical_device_features2(physical_device, &mut f2) };
            features12.timeline_semaphore == vk::TRUE
        };
        let mut enable12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
        let mut device_info =
            vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&names);
        if timeline {
            device_info = device_info.push_next(&mut enable12);
        }
        // SAFETY: a valid create info.
        let device = unsafe { instance.create_device(physical_device, &device_info, None) }.vk("vkCreateDevice")?;
        partial.device = Some(device.clone());
        // SAFETY: live device; the family was requested with one queue.
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        let parts = Parts { entry, instance, physical_device, device, queue_family, queue, extensions, timeline };
        let mut ctx = Context::assemble(parts, options.path, Ownership::Owned)?;
        ctx.validation = partial.disarm();
        Ok(Arc::new(ctx))
    }

    /// The context's fields from the objects it runs on: what the device tells about itself,
    /// and a command pool of its own on the queue family.
    fn assemble(p: Parts, path: PathKind, ownership: Ownership) -> Result<Context> {
        // SAFETY: a live physical device.
        let (props, ids, families, memory_properties) = unsafe {
            let mut ids = vk::PhysicalDeviceIDProperties::default();
            let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut ids);
            p.instance.get_physical_device_properties2(p.physical_device, &mut props2);
            let props = props2.properties;
            let families = p.instance.get_physical_device_queue_family_properties(p.physical_device);
            (props, ids, families, p.instance.get_physical_device_memory_properties(p.physical_device))
        };
        let device_name = props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let queue_flags = families
            .get(p.queue_family as usize)
            .map(|f| f.queue_flags)
            .ok_or_else(|| Error::NoDevice(format!("{device_name} has no queue family {}", p.queue_family)))?;
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(p.queue_family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: live device.
        let pool = unsafe { p.device.create_command_pool(&pool_info, None) }.vk("vkCreateCommandPool")?;
        let memory_fd = ash::khr::external_memory_fd::Device::new(&p.instance, &p.device);
        let how = if matches!(ownership, Ownership::Owned) { "its own" } else { "the application's" };
        log::info!(
            "context on {device_name} ({how} device, {path:?} path, queue family {}, timeline semaphores: {}, \
             extensions: {:?})",
            p.queue_family,
            p.timeline,
            p.extensions
        );
        Ok(Context {
            entry: p.entry,
            instance: p.instance,
            physical_device: p.physical_device,
            device: p.device,
            queue_family: p.queue_family,
            queue_flags,
            queue: p.queue,
            commands: Mutex::new(Commands { pool, idle: Vec::new() }),
            memory_properties,
            device_name,
            device_uuid: ids.device_uuid,
            driver_uuid: ids.driver_uuid,
            path,
            extensions: p.extensions,
            memory_fd,
            timeline: p.timeline,
            validation: None,
            ownership,
        })
    }

    /// Whether the context created its instance and device (and destroys them when dropped),
    /// rather than borrowing the application's ([`Context::from_app`]).
    pub fn owns_device(&self) -> bool {
        matches!(self.ownership, Ownership::Owned)
    }

    /// The loader.
    pub fn entry(&self) -> &ash::Entry {
        &self.entry
    }
    /// The instance.
    pub fn instance(&self) -> &ash::Instance {
        &self.instance
    }
    /// The physical device.
    pub fn physical_device(&self) -> vk::PhysicalDevice {
        self.physical_device
    }
    /// The device.
    pub fn device(&self) -> &ash::Device {
        &self.device
    }
    /// The queue family every command of the context runs on.
    pub fn queue_family(&self) -> u32 {
        self.queue_family
    }

    /// What the queue family can do.
    pub fn queue_flags(&self) -> vk::QueueFlags {
        self.queue_flags
    }
    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }
    /// `VkPhysicalDeviceIDProperties::deviceUUID`.
    pub fn device_uuid(&self) -> [u8; 16] {
        self.device_uuid
    }
    /// `VkPhysicalDeviceIDProperties::driverUUID`.
    pub fn driver_uuid(&self) -> [u8; 16] {
        self.driver_uuid
    }
    /// NV or KHR path.
    pub fn path(&self) -> PathKind {
        self.path
    }
    /// The memory types of the device.
    pub fn memory_properties(&self) -> &vk::PhysicalDeviceMemoryProperties {
        &self.memory_properties
    }
    /// Whether the device extension `name` was enabled.
    pub fn has_extension(&self, name: &CStr) -> bool {
        self.extensions.contains(&name)
    }
    /// Whether the device has the extension behind `handle_type`.
    pub fn supports_handle_type(&self, handle_type: HandleType) -> bool {
        self.has_extension(handle_type.extension())
    }
    /// Whether timeline semaphores are enabled.
    pub fn has_timeline_semaphores(&self) -> bool {
        self.timeline
    }
    pub(crate) fn memory_fd(&self) -> &ash::khr::external_memory_fd::Device {
        &self.memory_fd
    }

    /// The validation messages seen so far (empty without validation).
    pub fn validation_messages(&self) -> Vec<String> {
        self.validation.as_ref().map(ValidationLog::messages).unwrap_or_default()
    }

    /// A handle on the validation messages that stays valid after the context is gone (for
    /// messages emitted while it is destroyed).
    pub fn validation_log(&self) -> Option<Arc<Mutex<Vec<String>>>> {
        self.validation.as_ref().map(ValidationLog::shared)
    }

    /// A memory type among `bits` with `required` flags, preferring one that also has
    /// `preferred`.
    pub fn memory_type(
        &self,
        bits: u32,
        required: vk::MemoryPropertyFlags,
        preferred: vk::MemoryPropertyFlags,
    ) -> Option<u32> {
        let types = &self.memory_properties.memory_types[..self.memory_properties.memory_type_count as usize];
        let fits = |i: usize, f: vk::MemoryPropertyFlags| bits & (1 << i) != 0 && types[i].property_flags.contains(f);
        (0..types.len())
            .find(|&i| fits(i, required | preferred))
            .or_else(|| (0..types.len()).find(|&i| fits(i, required)))
            .map(|i| i as u32)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: every resource holds an `Arc<Context>`, so none is left; the queue is idle
        // after `submit`.
        unsafe {
            let owned = self.owns_device();
            // A borrowed device may be busy with the application's work: every submission of
            // the context was waited for (a `Submission` borrows it), so its pool is idle.
            if owned {
                let _ = self.device.device_wait_idle();
            }
            let commands = self.commands.get_mut().unwrap_or_else(|e| e.into_inner());
            for (_, fence) in commands.idle.drain(..) {
                self.device.destroy_fence(fence, None);
            }
            self.device.destroy_command_pool(commands.pool, None);
            if !owned {
                return;
            }
            self.device.destroy_device(None);
            if let Some(v) = self.validation.as_mut() {
                v.uninstall();
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// What both constructors hand to [`Context::assemble`] (an [`AppDevice`] holds one).
#[derive(Clone)]
struct Parts {
    entry: ash::Entry,
    instance: ash::Instance,
    physical_device: vk::PhysicalDevice,
    device: ash::Device,
    queue_family: u32,
    queue: vk::Queue,
    extensions: Vec<&'static CStr>,
    timeline: bool,
}
