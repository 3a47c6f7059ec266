//! An instance and a device set up for sharing memory.

use crate::error::{Error, Result, VkResultExt};
use crate::handle::HandleType;
use crate::layer::LAYER_NAME;
use crate::validation::{ValidationLog, VALIDATION_LAYER};
use ash::vk;
use std::ffi::{c_char, CStr};
use std::sync::{Arc, Mutex};

/// Which extension makes memory exportable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PathKind {
    /// Core 1.1 / VK_KHR_external_memory: what every current driver has.
    #[default]
    Khr,
    /// VK_NV_external_memory through the extmem layer (images made exportable with
    /// `VkExternalMemoryImageCreateInfoNV`, memory with `VkExportMemoryAllocateInfoNV`).
    Nv,
}

/// Which of the device's queue families a [`Context`] submits to.
///
/// Every extmem operation is a transfer (fills, copies, ownership barriers), so any family
/// will do. The choice matters for latency when another API (CUDA) alternates with Vulkan on
/// the same GPU: see `bench/results/h100.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueKind {
    /// The first family with graphics or compute (the "universal" queue).
    #[default]
    General,
    /// A compute family without graphics; the general one where the device has none.
    Compute,
    /// A transfer-only family (the copy engines); else a compute-only one; else the general one.
    Transfer,
}

impl std::str::FromStr for QueueKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "general" => Ok(QueueKind::General),
            "compute" => Ok(QueueKind::Compute),
            "transfer" => Ok(QueueKind::Transfer),
            other => Err(format!("unknown queue kind {other:?}: use general, compute or transfer")),
        }
    }
}

/// The family `kind` asks for among `families` (see [`QueueKind`] for the fallbacks).
pub(crate) fn pick_queue_family(families: &[vk::QueueFamilyProperties], kind: QueueKind) -> Option<u32> {
    let graphics_or_compute = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
    let find = |ok: &dyn Fn(vk::QueueFlags) -> bool| {
        families.iter().position(|f| f.queue_count > 0 && ok(f.queue_flags)).map(|i| i as u32)
    };
    let general = || find(&|f| f.intersects(graphics_or_compute));
    let compute_only = || find(&|f| f.contains(vk::QueueFlags::COMPUTE) && !f.contains(vk::QueueFlags::GRAPHICS));
    let transfer_only = || find(&|f| f.contains(vk::QueueFlags::TRANSFER) && !f.intersects(graphics_or_compute));
    match kind {
        QueueKind::General => general(),
        QueueKind::Compute => compute_only().or_else(general),
        QueueKind::Transfer => transfer_only().or_else(compute_only).or_else(general),
    }
}

/// How to set up a [`Context`].
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// NV path (through the layer) or KHR path.
    pub path: PathKind,
    /// Enable the Khronos validation layer (below the extmem layer) and collect its messages.
    pub validation: bool,
    /// Which physical device (index in enumeration order); default: `$EXTMEM_DEVICE`, else the
    /// first GPU, else the first device.
    pub device: Option<usize>,
    /// The application name given to the driver.
    pub app_name: String,
    /// Which queue family to submit to.
    pub queue: QueueKind,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            path: PathKind::Khr,
            validation: false,
            device: None,
            app_name: "extmem".into(),
            queue: QueueKind::General,
        }
    }
}

/// The device extensions a context enables when the device has them.
const OPTIONAL_EXTENSIONS: [&CStr; 4] = [
    ash::khr::external_semaphore_fd::NAME,
    ash::khr::external_fence_fd::NAME,
    ash::ext::external_memory_dma_buf::NAME,
    ash::ext::external_memory_host::NAME,
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
        let (props, ids, available) = unsafe {
            let mut ids = vk::PhysicalDeviceIDProperties::default();
            let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut ids);
            instance.get_physical_device_properties2(physical_device, &mut props2);
            let props = props2.properties;
            let available = instance
                .enumerate_device_extension_properties(physical_device)
                .vk("vkEnumerateDeviceExtensionProperties")?;
            (props, ids, available)
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
        let queue_flags = families[queue_family as usize].queue_flags;
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
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(queue_family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: live device.
        let pool = unsafe { device.create_command_pool(&pool_info, None) }.vk("vkCreateCommandPool")?;
        // SAFETY: live physical device.
        let memory_properties = unsafe { instance.get_physical_device_memory_properties(physical_device) };
        let memory_fd = ash::khr::external_memory_fd::Device::new(&instance, &device);
        let validation = partial.disarm();
        Ok(Arc::new(Context {
            entry,
            instance,
            physical_device,
            device,
            queue_family,
            queue_flags,
            queue,
            commands: Mutex::new(Commands { pool, idle: Vec::new() }),
            memory_properties,
            device_name,
            device_uuid: ids.device_uuid,
            driver_uuid: ids.driver_uuid,
            path: options.path,
            extensions,
            memory_fd,
            timeline,
            validation,
        }))
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

    /// Records commands with `record` into a one-time command buffer, submits it to the
    /// context's queue and waits for it to complete.
    pub fn submit(&self, record: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<()> {
        self.submit_with(record, None, None)
    }

    /// Like [`Context::submit`], with the GPU waiting for timeline value `wait.1` of `wait.0`
    /// before the commands and signalling `signal.1` on `signal.0` after them. The host still
    /// waits for its own fence (a wait through the API that signalled it).
    pub fn submit_with(
        &self,
        record: impl FnOnce(&ash::Device, vk::CommandBuffer),
        wait: Option<(vk::Semaphore, u64)>,
        signal: Option<(vk::Semaphore, u64)>,
    ) -> Result<()> {
        self.submit_async(record, wait, signal)?.wait()
    }

    /// Records and submits like [`Context::submit_with`] but returns at once: the
    /// [`Submission`] waits for the GPU when asked, or when it is dropped. Frame loops keep a
    /// few in flight, so the host never waits for the GPU between frames.
    pub fn submit_async(
        &self,
        record: impl FnOnce(&ash::Device, vk::CommandBuffer),
        wait: Option<(vk::Semaphore, u64)>,
        signal: Option<(vk::Semaphore, u64)>,
    ) -> Result<Submission<'_>> {
        // The pool, the idle pairs and the queue are used under this lock only.
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        let d = &self.device;
        // SAFETY: a command buffer and fence of the locked pool, idle (their last use was
        // waited for), recorded and submitted here; the `Submission` gives them back.
        unsafe {
            let (cb, fence) = match commands.idle.pop() {
                Some(pair) => pair,
                None => {
                    let alloc =
                        vk::CommandBufferAllocateInfo::default().command_pool(commands.pool).command_buffer_count(1);
                    let cb = d.allocate_command_buffers(&alloc).vk("vkAllocateCommandBuffers")?[0];
                    match d.create_fence(&vk::FenceCreateInfo::default(), None) {
                        Ok(f) => (cb, f),
                        Err(e) => {
                            d.free_command_buffers(commands.pool, &[cb]);
                            return Err(Error::Vulkan { call: "vkCreateFence", result: e });
                        }
                    }
                }
            };
            // Dropped after the lock guard on every path (declared first), so its `Drop` can
            // take the lock to give the pair back.
            let mut submission = Submission { ctx: self, cb, fence, submitted: false };
            let result = (|| {
                let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
                d.begin_command_buffer(cb, &begin).vk("vkBeginCommandBuffer")?;
                record(d, cb);
                d.end_command_buffer(cb).vk("vkEndCommandBuffer")?;
                let (wait_sems, wait_values): (Vec<_>, Vec<_>) = wait.into_iter().unzip();
                let (signal_sems, signal_values): (Vec<_>, Vec<_>) = signal.into_iter().unzip();
                let stages = vec![vk::PipelineStageFlags::ALL_COMMANDS; wait_sems.len()];
                let mut timeline = vk::TimelineSemaphoreSubmitInfo::default()
                    .wait_semaphore_values(&wait_values)
                    .signal_semaphore_values(&signal_values);
                let cbs = [cb];
                let mut submit = vk::SubmitInfo::default()
                    .command_buffers(&cbs)
                    .wait_semaphores(&wait_sems)
                    .wait_dst_stage_mask(&stages)
                    .signal_semaphores(&signal_sems);
                // Values are ignored for binary semaphores; the struct needs timeline support.
                if self.timeline && (wait.is_some() || signal.is_some()) {
                    submit = submit.push_next(&mut timeline);
                }
                d.queue_submit(self.queue, &[submit], fence).vk("vkQueueSubmit")
            })();
            drop(commands);
            result?;
            submission.submitted = true;
            Ok(submission)
        }
    }
}

/// Work on the GPU from [`Context::submit_async`].
#[must_use = "dropping a Submission waits for the GPU"]
pub struct Submission<'a> {
    ctx: &'a Context,
    cb: vk::CommandBuffer,
    fence: vk::Fence,
    /// The batch reached the queue (so the fence will signal).
    submitted: bool,
}

impl Submission<'_> {
    /// Waits for the GPU to finish the work (a host wait on this side's own fence).
    pub fn wait(self) -> Result<()> {
        self.wait_fence()
    }

    fn wait_fence(&self) -> Result<()> {
        if !self.submitted {
            return Ok(());
        }
        // SAFETY: the fence of a submitted batch.
        unsafe { self.ctx.device.wait_for_fences(&[self.fence], true, u64::MAX) }.vk("vkWaitForFences")
    }

    /// Whether the GPU has finished the work.
    pub fn is_done(&self) -> Result<bool> {
        if !self.submitted {
            return Ok(true);
        }
        // SAFETY: the fence of a submitted batch.
        unsafe { self.ctx.device.get_fence_status(self.fence) }.vk("vkGetFenceStatus")
    }
}

impl Drop for Submission<'_> {
    fn drop(&mut self) {
        // The command buffer and fence go back to the idle list once the GPU is done with
        // them (reused: creating a fence per submission costs hundreds of µs on some drivers).
        let waited = self.wait_fence();
        let d = &self.ctx.device;
        let mut commands = self.ctx.commands.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the batch finished (or never went out); the pair is idle.
        unsafe {
            if waited.is_ok() && d.reset_fences(&[self.fence]).is_ok() {
                commands.idle.push((self.cb, self.fence));
            } else {
                d.free_command_buffers(commands.pool, &[self.cb]);
                d.destroy_fence(self.fence, None);
            }
        }
    }
}

/// The command pool and the command buffer / fence pairs waiting for reuse.
struct Commands {
    pool: vk::CommandPool,
    idle: Vec<(vk::CommandBuffer, vk::Fence)>,
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: every resource holds an `Arc<Context>`, so none is left; the queue is idle
        // after `submit`.
        unsafe {
            let _ = self.device.device_wait_idle();
            let commands = self.commands.get_mut().unwrap_or_else(|e| e.into_inner());
            for (_, fence) in commands.idle.drain(..) {
                self.device.destroy_fence(fence, None);
            }
            self.device.destroy_command_pool(commands.pool, None);
            self.device.destroy_device(None);
            if let Some(v) = self.validation.as_mut() {
                v.uninstall();
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// Destroys a half-made context when `Context::new` fails part way.
struct Partial {
    instance: Option<ash::Instance>,
    validation: Option<ValidationLog>,
    device: Option<ash::Device>,
}

impl Partial {
    fn disarm(mut self) -> Option<ValidationLog> {
        self.instance = None;
        self.device = None;
        self.validation.take()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // SAFETY: only objects made by the failed `Context::new`, in reverse order.
        unsafe {
            if let Some(d) = self.device.take() {
                d.destroy_device(None);
            }
            if let Some(v) = self.validation.as_mut() {
                v.uninstall();
            }
            if let Some(i) = self.instance.take() {
                i.destroy_instance(None);
            }
        }
    }
}

fn pick_device(instance: &ash::Instance, wanted: Option<usize>) -> Result<vk::PhysicalDevice> {
    // SAFETY: a live instance.
    let devices = unsafe { instance.enumerate_physical_devices() }.vk("vkEnumeratePhysicalDevices")?;
    if devices.is_empty() {
        return Err(Error::NoDevice(
            "the loader found no Vulkan driver (Debian: apt-get install mesa-vulkan-drivers)".into(),
        ));
    }
    let wanted = wanted.or_else(|| std::env::var("EXTMEM_DEVICE").ok().and_then(|v| v.parse().ok()));
    if let Some(i) = wanted {
        return devices.get(i).copied().ok_or_else(|| {
            Error::NoDevice(format!("device {i} asked for, but there are {} (see `extmem caps`)", devices.len()))
        });
    }
    // SAFETY: live physical devices.
    let is_gpu = |&pd: &vk::PhysicalDevice| {
        let t = unsafe { instance.get_physical_device_properties(pd) }.device_type;
        t == vk::PhysicalDeviceType::DISCRETE_GPU || t == vk::PhysicalDeviceType::INTEGRATED_GPU
    };
    Ok(devices.iter().copied().find(is_gpu).unwrap_or(devices[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(flags: vk::QueueFlags) -> vk::QueueFamilyProperties {
        vk::QueueFamilyProperties { queue_flags: flags, queue_count: 1, ..Default::default() }
    }

    #[test]
    fn queue_kinds_pick_the_family_they_name() {
        use vk::QueueFlags as F;
        // NVIDIA's layout: universal, transfer-only, compute-only.
        let nvidia =
            [family(F::GRAPHICS | F::COMPUTE | F::TRANSFER), family(F::TRANSFER), family(F::COMPUTE | F::TRANSFER)];
        assert_eq!(pick_queue_family(&nvidia, QueueKind::General), Some(0));
        assert_eq!(pick_queue_family(&nvidia, QueueKind::Transfer), Some(1));
        assert_eq!(pick_queue_family(&nvidia, QueueKind::Compute), Some(2));
        // lavapipe's: one family for everything, so every kind falls back to it.
        let one = [family(F::GRAPHICS | F::COMPUTE | F::TRANSFER)];
        for kind in [QueueKind::General, QueueKind::Compute, QueueKind::Transfer] {
            assert_eq!(pick_queue_family(&one, kind), Some(0));
        }
        // No transfer-only family: a compute-only one comes next.
        let no_copy = [family(F::GRAPHICS | F::COMPUTE), family(F::COMPUTE)];
        assert_eq!(pick_queue_family(&no_copy, QueueKind::Transfer), Some(1));
        // A video family (neither graphics, compute nor transfer) is never taken; an empty
        // family neither.
        let video = [
            family(F::VIDEO_DECODE_KHR),
            vk::QueueFamilyProperties { queue_count: 0, ..family(F::TRANSFER) },
            family(F::COMPUTE),
        ];
        assert_eq!(pick_queue_family(&video, QueueKind::Transfer), Some(2));
        assert_eq!(pick_queue_family(&[family(F::VIDEO_DECODE_KHR)], QueueKind::General), None);
    }

    #[test]
    fn queue_kinds_parse_and_name_the_choices() {
        assert_eq!("transfer".parse::<QueueKind>(), Ok(QueueKind::Transfer));
        let err = "copy".parse::<QueueKind>().unwrap_err();
        assert!(err.contains("\"copy\"") && err.contains("general, compute or transfer"), "{err}");
    }
}
