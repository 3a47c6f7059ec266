//! A context on the application's own instance, device and queue: it checks what the
//! application enabled against what extmem needs, and never destroys what it did not create.

use super::{Context, Ownership, Parts, PathKind, OPTIONAL_EXTENSIONS};
use crate::error::{Error, Result};
use ash::vk;
use std::ffi::CStr;
use std::sync::{Arc, Mutex};

/// How a context on a borrowed queue may use it. Vulkan requires the application to
/// synchronise every `vkQueueSubmit` on a queue; extmem never submits behind its back.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum QueueAccess {
    /// extmem never submits: [`Context::submit`] and the [`crate::SharedMemory`] transfers
    /// that need it fail with an error saying so. The application records extmem's commands
    /// into its own command buffers ([`crate::external`]).
    #[default]
    RecordOnly,
    /// extmem submits while it holds this lock; the application holds the same lock around
    /// its own submissions to the queue.
    Lock(Arc<Mutex<()>>),
    /// extmem calls this with its submission; the application runs it while it holds its
    /// queue (vulkano: `move |submit| queue.with(|_| submit())`).
    With(QueueGuard),
}

/// The application's code that runs extmem's submission (the `&mut dyn FnMut()`) while it
/// holds its queue.
pub type QueueGuard = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

impl QueueAccess {
    /// [`QueueAccess::With`] from a closure.
    pub fn with(run: impl Fn(&mut dyn FnMut()) + Send + Sync + 'static) -> Self {
        QueueAccess::With(Arc::new(run))
    }
}

impl std::fmt::Debug for QueueAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueueAccess::RecordOnly => "RecordOnly",
            QueueAccess::Lock(_) => "Lock",
            QueueAccess::With(_) => "With",
        })
    }
}

/// The application's Vulkan objects and what it enabled on them, for [`Context::from_app`].
/// Vulkan cannot be asked afterwards which extensions and features a device was created with,
/// so the application says so here.
#[derive(Clone)]
pub struct AppDevice {
    parts: Parts,
    queue_access: QueueAccess,
}

impl AppDevice {
    /// The objects the application created (the instance with `apiVersion` 1.1 or later, the
    /// device with `queue` from `queue_family`); extensions and features enabled: none yet,
    /// queue access: [`QueueAccess::RecordOnly`].
    pub fn new(
        entry: &ash::Entry,
        instance: &ash::Instance,
        physical_device: vk::PhysicalDevice,
        device: &ash::Device,
        queue_family: u32,
        queue: vk::Queue,
    ) -> Self {
        let parts = Parts {
            entry: entry.clone(),
            instance: instance.clone(),
            physical_device,
            device: device.clone(),
            queue_family,
            queue,
            extensions: Vec::new(),
            timeline: false,
        };
        AppDevice { parts, queue_access: QueueAccess::RecordOnly }
    }

    /// The device extensions the application enabled (`ppEnabledExtensionNames`). extmem
    /// remembers those it knows; the others do not concern it.
    pub fn extensions<'a>(mut self, enabled: impl IntoIterator<Item = &'a CStr>) -> Self {
        let known = Context::required_extensions().iter().chain(OPTIONAL_EXTENSIONS.iter()).copied();
        let known: Vec<&'static CStr> = known.chain([ash::nv::external_memory::NAME]).collect();
        for name in enabled {
            if let Some(k) = known.iter().find(|k| **k == name) {
                if !self.parts.extensions.contains(k) {
                    self.parts.extensions.push(k);
                }
            }
        }
        self
    }

    /// Whether the application enabled `timelineSemaphore` (Vulkan 1.2 or
    /// VK_KHR_timeline_semaphore): the semaphore-synchronised hand-offs need it.
    pub fn timeline_semaphores(mut self, enabled: bool) -> Self {
        self.parts.timeline = enabled;
        self
    }

    /// How extmem may use the queue (default [`QueueAccess::RecordOnly`]).
    pub fn queue_access(mut self, access: QueueAccess) -> Self {
        self.queue_access = access;
        self
    }
}

impl Context {
    /// The device extensions extmem needs on a device it borrows ([`Context::from_app`]);
    /// VK_KHR_external_semaphore_fd, VK_EXT_external_memory_dma_buf and
    /// VK_EXT_external_memory_host add semaphore sharing, dma-buf and host memory.
    pub fn required_extensions() -> &'static [&'static CStr] {
        &[ash::khr::external_memory_fd::NAME]
    }

    /// The device extensions extmem uses where they are enabled.
    pub fn optional_extensions() -> &'static [&'static CStr] {
        &OPTIONAL_EXTENSIONS
    }

    /// A context on the application's instance, device and queue. It destroys only what it
    /// creates itself (a command pool and fences); the application keeps the instance and
    /// device alive while the context and everything made from it lives, and destroys them
    /// after. Fails, naming what is missing, when the device lacks a required extension
    /// ([`Context::required_extensions`]) or Vulkan 1.1.
    ///
    /// # Safety
    /// The handles in `app` must be valid objects of one instance, created as `app` says
    /// (enabled extensions and features), and outlive the returned context and every object
    /// made with it. With [`QueueAccess::Lock`], the application submits to the queue only
    /// while it holds the lock.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use extmem::{vk, AppDevice, Context, QueueAccess};
    /// use std::sync::{Arc, Mutex};
    /// // The application's own Vulkan, made with ash.
    /// let entry = unsafe { ash::Entry::load()? };
    /// let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_2);
    /// let instance = unsafe { entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None)? };
    /// let physical_device = unsafe { instance.enumerate_physical_devices()? }[0];
    /// let family = 0; // a family with graphics or compute, in a real program
    /// let extensions: Vec<_> = Context::required_extensions().iter().map(|e| e.as_ptr()).collect();
    /// let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&[1.0])];
    /// let info = vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&extensions);
    /// let device = unsafe { instance.create_device(physical_device, &info, None)? };
    /// let queue = unsafe { device.get_device_queue(family, 0) };
    ///
    /// // extmem borrows them; it submits only under the application's queue lock.
    /// let queue_lock = Arc::new(Mutex::new(()));
    /// let borrowed = AppDevice::new(&entry, &instance, physical_device, &device, family, queue)
    ///     .extensions(Context::required_extensions().iter().copied())
    ///     .queue_access(QueueAccess::Lock(queue_lock.clone()));
    /// // SAFETY: the objects are live and outlive the context.
    /// let ctx = unsafe { Context::from_app(borrowed)? };
    /// assert!(!ctx.owns_device());
    /// drop(ctx); // destroys extmem's command pool, not the device
    /// unsafe {
    ///     device.destroy_device(None);
    ///     instance.destroy_instance(None);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub unsafe fn from_app(app: AppDevice) -> Result<Arc<Context>> {
        // SAFETY: the caller vouches for the handles.
        let props = unsafe { app.parts.instance.get_physical_device_properties(app.parts.physical_device) };
        let name = props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if props.api_version < vk::API_VERSION_1_1 {
            return Err(Error::Unsupported(format!("{name} supports Vulkan 1.0 only; extmem needs 1.1")));
        }
        let missing: Vec<String> = Context::required_extensions()
            .iter()
            .filter(|e| !app.parts.extensions.contains(e))
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        if !missing.is_empty() {
            return Err(Error::Unsupported(format!(
                "the application's device lacks {}: enable it in VkDeviceCreateInfo::ppEnabledExtensionNames \
                 (extmem::Context::required_extensions) and list it in AppDevice::extensions",
                missing.join(", ")
            )));
        }
        let path =
            if app.parts.extensions.contains(&ash::nv::external_memory::NAME) { PathKind::Nv } else { PathKind::Khr };
        Ok(Arc::new(Context::assemble(app.parts, path, Ownership::Borrowed(app.queue_access))?))
    }

    /// Runs `submit` (a `vkQueueSubmit` to the context's queue) the way the queue may be used:
    /// at once on the context's own queue (its command lock covers it), under the
    /// application's lock or inside its callback for a borrowed one; an error where the
    /// application did not allow extmem to submit.
    pub(super) fn on_queue<R>(&self, submit: impl FnOnce() -> Result<R>) -> Result<R> {
        match &self.ownership {
            Ownership::Owned => submit(),
            Ownership::Borrowed(QueueAccess::Lock(lock)) => {
                let _queue = lock.lock().unwrap_or_else(|e| e.into_inner());
                submit()
            }
            Ownership::Borrowed(QueueAccess::With(run)) => {
                let (mut submit, mut result) = (Some(submit), None);
                run(&mut || result = submit.take().map(|s| s()));
                result.unwrap_or_else(|| {
                    Err(Error::Unsupported("the application's queue callback did not run extmem's submission".into()))
                })
            }
            Ownership::Borrowed(QueueAccess::RecordOnly) => self.may_submit().and_then(|()| submit()),
        }
    }

    /// Fails, saying what to do instead, when the application did not allow extmem to submit
    /// to its queue (checked before anything is recorded).
    pub(super) fn may_submit(&self) -> Result<()> {
        match &self.ownership {
            Ownership::Borrowed(QueueAccess::RecordOnly) => Err(Error::Unsupported(
                "this context borrows the application's queue without a lock, so extmem does not submit: \
                 record extmem's commands into your command buffer (extmem::external), or give the queue lock \
                 with AppDevice::queue_access"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Why semaphores cannot be shared, for an error message: on a borrowed device, what the
    /// application did not enable; otherwise where to look.
    pub(crate) fn semaphore_shortfall(&self, timeline: bool) -> String {
        if self.owns_device() {
            return " (see `extmem caps`)".into();
        }
        let mut missing = Vec::new();
        if !self.has_extension(ash::khr::external_semaphore_fd::NAME) {
            missing.push("VK_KHR_external_semaphore_fd");
        }
        if timeline && !self.has_timeline_semaphores() {
            missing.push("the timelineSemaphore feature");
        }
        if missing.is_empty() {
            return " (see `extmem caps`)".into();
        }
        format!(
            ": the application's device was not created with {} (enable it and say so with AppDevice::extensions / \
             AppDevice::timeline_semaphores)",
            missing.join(" and ")
        )
    }
}
