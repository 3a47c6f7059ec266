//! Contexts: one extmem creates itself (its own instance and device), or one on the
//! application's own `VkInstance` / `VkPhysicalDevice` / `VkDevice` / queue (borrowed).

use crate::convert::{bool32, c_str, input, out_handle, output};
use crate::handles::{self, handle};
use crate::status::{extmem_status, guard, CResult, Failure};
use crate::vk_types::*;
use ash::vk;
use extmem_rs::{AppDevice, Context, ContextOptions, PathKind, QueueAccess, QueueKind};
use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;

/// A context: a device extmem works on. Thread-safe: any thread may use it, several at once.
/// Everything made from it keeps it alive, so `extmem_context_destroy` may come first.
pub struct extmem_context {
    _private: [u8; 0],
}
handle!(extmem_context => Arc<Context>);

/// Which queue family a context extmem creates submits to.
pub type extmem_queue_kind = u32;
/// The first family with graphics or compute.
pub const EXTMEM_QUEUE_GENERAL: extmem_queue_kind = 0;
/// A compute family without graphics, else the general one.
pub const EXTMEM_QUEUE_COMPUTE: extmem_queue_kind = 1;
/// A transfer-only family, else compute-only, else general.
pub const EXTMEM_QUEUE_TRANSFER: extmem_queue_kind = 2;

/// Which extension makes memory exportable on a context extmem creates.
pub type extmem_path = u32;
/// Core Vulkan 1.1 / VK_KHR_external_memory (every current driver).
pub const EXTMEM_PATH_KHR: extmem_path = 0;
/// VK_NV_external_memory through the extmem layer (the layer must be visible to the loader).
pub const EXTMEM_PATH_NV: extmem_path = 1;

/// How extmem creates a context of its own. All zero but `struct_size` is the default.
#[repr(C)]
pub struct extmem_context_options {
    /// `sizeof(extmem_context_options)`.
    pub struct_size: u32,
    /// `VK_TRUE`: enable the Khronos validation layer and count its messages
    /// (`extmem_context_info::validation_messages`).
    pub validation: VkBool32,
    /// The physical device's index in enumeration order, or -1: `$EXTMEM_DEVICE`, else the
    /// first GPU, else the first device.
    pub device_index: i32,
    /// `EXTMEM_QUEUE_*`.
    pub queue: extmem_queue_kind,
    /// `EXTMEM_PATH_*`.
    pub path: extmem_path,
    /// The application name given to the driver; NULL: "extmem".
    pub app_name: *const c_char,
}

/// The application's Vulkan objects and what it enabled on them, for
/// `extmem_context_create_borrowed`. Vulkan cannot be asked afterwards which extensions and
/// features a device was created with, so the application says so here.
#[repr(C)]
pub struct extmem_app_device {
    /// `sizeof(extmem_app_device)`.
    pub struct_size: u32,
    /// The application's `vkGetInstanceProcAddr` (its loader's or its own): extmem loads
    /// every function through it and never opens a loader of its own.
    pub get_instance_proc_addr: PFN_vkGetInstanceProcAddr,
    /// The application's instance.
    pub instance: VkInstance,
    /// `VkApplicationInfo::apiVersion` the instance was created with: at least
    /// `VK_API_VERSION_1_1`.
    pub api_version: u32,
    /// The physical device the device was created on.
    pub physical_device: VkPhysicalDevice,
    /// The application's device.
    pub device: VkDevice,
    /// The family of `queue`.
    pub queue_family_index: u32,
    /// A queue of that family, which extmem submits to only as `lock_queue` allows.
    pub queue: VkQueue,
    /// How many names `enabled_extension_names` holds.
    pub enabled_extension_count: u32,
    /// `VkDeviceCreateInfo::ppEnabledExtensionNames`; it must contain
    /// `VK_KHR_external_memory_fd`. Read during the call only.
    pub enabled_extension_names: *const *const c_char,
    /// `VK_TRUE` if the device was created with the `timelineSemaphore` feature.
    pub timeline_semaphore: VkBool32,
    /// Both NULL: extmem never submits to the queue (transfers that need it fail with
    /// `EXTMEM_ERROR_UNSUPPORTED`; record barriers into your own command buffers instead).
    /// Both set: extmem calls `lock_queue(queue_user_data)` before each of its
    /// `vkQueueSubmit`s and `unlock_queue(queue_user_data)` after, from the thread that
    /// called extmem; the application holds the same lock around its own submissions.
    pub lock_queue: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    /// See `lock_queue`.
    pub unlock_queue: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    /// Passed to `lock_queue` and `unlock_queue`.
    pub queue_user_data: *mut c_void,
}

/// What a context is on.
#[repr(C)]
pub struct extmem_context_info {
    /// `sizeof(extmem_context_info)`.
    pub struct_size: u32,
    /// The instance (the application's, for a borrowed context).
    pub instance: VkInstance,
    /// The physical device.
    pub physical_device: VkPhysicalDevice,
    /// The device.
    pub device: VkDevice,
    /// The queue family extmem's commands run on.
    pub queue_family_index: u32,
    /// `VK_TRUE` when extmem created the instance and device (and destroys them).
    pub owns_device: VkBool32,
    /// `VK_TRUE` when timeline semaphores are enabled.
    pub timeline_semaphores: VkBool32,
    /// `deviceUUID`.
    pub device_uuid: [u8; 16],
    /// `driverUUID`.
    pub driver_uuid: [u8; 16],
    /// Validation messages seen so far (contexts extmem created with validation only).
    pub validation_messages: u32,
    /// The device's name, NUL-terminated (cut to fit).
    pub device_name: [c_char; 256],
}

/// Creates an instance and a device of extmem's own. `options`: NULL for the defaults.
/// Destroy it with `extmem_context_destroy`.
#[no_mangle]
pub unsafe extern "C" fn extmem_context_create(
    options: *const extmem_context_options,
    out: *mut *mut extmem_context,
) -> extmem_status {
    guard("extmem_context_create", || {
        // SAFETY: the caller passes a writable pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let mut o = ContextOptions::default();
        if !options.is_null() {
            // SAFETY: non-null: the caller's struct.
            let c = unsafe { input(options, "options") }?;
            o = o.validation(bool32(c.validation, "options->validation")?);
            o = o.device(match c.device_index {
                -1 => None,
                i if i >= 0 => Some(i as usize),
                i => return Err(Failure::arg(format!("options->device_index is {i}: use -1 or an index"))),
            });
            o = o.queue(match c.queue {
                EXTMEM_QUEUE_GENERAL => QueueKind::General,
                EXTMEM_QUEUE_COMPUTE => QueueKind::Compute,
                EXTMEM_QUEUE_TRANSFER => QueueKind::Transfer,
                q => return Err(Failure::arg(format!("options->queue is {q}: use an EXTMEM_QUEUE_* value"))),
            });
            o = o.path(match c.path {
                EXTMEM_PATH_KHR => PathKind::Khr,
                EXTMEM_PATH_NV => PathKind::Nv,
                p => return Err(Failure::arg(format!("options->path is {p}: use EXTMEM_PATH_KHR or EXTMEM_PATH_NV"))),
            });
            if !c.app_name.is_null() {
                // SAFETY: non-null: a NUL-terminated string of the caller's.
                o = o.app_name(unsafe { c_str(c.app_name, "options->app_name") }?);
            }
        }
        *out = handles::insert::<extmem_context>(Context::new(&o)?);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The application's `user_data`, which it promises may be used from any thread.
struct QueueLock {
    lock: unsafe extern "C" fn(*mut c_void),
    unlock: unsafe extern "C" fn(*mut c_void),
    user_data: *mut c_void,
}
// SAFETY: the header documents that the callbacks are called from the threads that call
// extmem, with this pointer; the application makes that safe.
unsafe impl Send for QueueLock {}
// SAFETY: as above.
unsafe impl Sync for QueueLock {}

/// Calls `unlock` when dropped, so a failed submission still unlocks.
struct Unlock<'a>(&'a QueueLock);
impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        // SAFETY: the application's callback, with its own pointer.
        unsafe { (self.0.unlock)(self.0.user_data) }
    }
}

fn queue_access(app: &extmem_app_device) -> CResult<QueueAccess> {
    match (app.lock_queue, app.unlock_queue) {
        (None, None) => Ok(QueueAccess::RecordOnly),
        (Some(lock), Some(unlock)) => {
            let q = QueueLock { lock, unlock, user_data: app.queue_user_data };
            Ok(QueueAccess::with(move |submit| {
                // SAFETY: the application's callback, with its own pointer.
                unsafe { (q.lock)(q.user_data) };
                let _unlock = Unlock(&q);
                submit();
            }))
        }
        _ => Err(Failure::arg("app->lock_queue and app->unlock_queue must both be set or both be NULL")),
    }
}

/// A context on the application's own instance, device and queue. It destroys only what it
/// creates (a command pool and fences); the application keeps its instance and device alive
/// until the context and everything made from it is destroyed, then destroys them itself.
/// Fails, naming what is missing, when the device lacks `VK_KHR_external_memory_fd` or
/// Vulkan 1.1.
#[no_mangle]
pub unsafe extern "C" fn extmem_context_create_borrowed(
    app: *const extmem_app_device,
    out: *mut *mut extmem_context,
) -> extmem_status {
    guard("extmem_context_create_borrowed", || {
        // SAFETY: the caller passes a writable pointer.
        let out = unsafe { out_handle(out, "out") }?;
        // SAFETY: the caller's struct.
        let app = unsafe { input(app, "app") }?;
        let gipa = app.get_instance_proc_addr.ok_or_else(|| Failure::arg("app->get_instance_proc_addr is NULL"))?;
        let nulls = [
            ("instance", app.instance == vk::Instance::null()),
            ("physical_device", app.physical_device == vk::PhysicalDevice::null()),
            ("device", app.device == vk::Device::null()),
            ("queue", app.queue == vk::Queue::null()),
        ];
        if let Some((name, _)) = nulls.iter().find(|(_, null)| *null) {
            return Err(Failure::arg(format!("app->{name} is VK_NULL_HANDLE")));
        }
        if app.api_version < vk::API_VERSION_1_1 {
            return Err(Failure::new(
                extmem_status::EXTMEM_ERROR_UNSUPPORTED,
                format!(
                    "app->api_version is {}.{}: extmem needs an instance created with apiVersion 1.1 or later",
                    vk::api_version_major(app.api_version),
                    vk::api_version_minor(app.api_version)
                ),
            ));
        }
        let n = app.enabled_extension_count as usize;
        if n > 0 && app.enabled_extension_names.is_null() {
            return Err(Failure::arg(format!("app->enabled_extension_names is NULL with a count of {n}")));
        }
        let mut names: Vec<&CStr> = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: the caller's array of `n` pointers.
            let p = unsafe { *app.enabled_extension_names.add(i) };
            if p.is_null() {
                return Err(Failure::arg(format!("app->enabled_extension_names[{i}] is NULL")));
            }
            // SAFETY: a NUL-terminated extension name of the caller's.
            names.push(unsafe { CStr::from_ptr(p) });
        }
        let timeline = bool32(app.timeline_semaphore, "app->timeline_semaphore")?;
        let access = queue_access(app)?;
        // SAFETY: the application's own loader entry point; the handles are its live objects
        // (the header says so), and their functions are loaded through it.
        let ctx = unsafe {
            let entry = ash::Entry::from_static_fn(ash::StaticFn { get_instance_proc_addr: gipa });
            let instance = ash::Instance::load(entry.static_fn(), app.instance);
            let device = ash::Device::load(instance.fp_v1_0(), app.device);
            let borrowed =
                AppDevice::new(&entry, &instance, app.physical_device, &device, app.queue_family_index, app.queue)
                    .extensions(names)
                    .timeline_semaphores(timeline)
                    .queue_access(access);
            Context::from_app(borrowed)?
        };
        *out = handles::insert::<extmem_context>(ctx);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Drops the application's reference on the context. Objects made from it keep it alive;
/// the last one gone destroys what extmem created (for a context of extmem's own, the device
/// and instance, after waiting for the device to be idle). A NULL or destroyed handle is
/// ignored, with the error recorded.
#[no_mangle]
pub unsafe extern "C" fn extmem_context_destroy(ctx: *mut extmem_context) {
    guard("extmem_context_destroy", || {
        handles::remove(ctx)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// What the context is on.
#[no_mangle]
pub unsafe extern "C" fn extmem_context_get_info(
    ctx: *const extmem_context,
    out: *mut extmem_context_info,
) -> extmem_status {
    guard("extmem_context_get_info", || {
        let c = handles::get(ctx)?;
        // SAFETY: the caller's struct, for writing.
        let out = unsafe { output(out, "out") }?;
        out.instance = c.instance().handle();
        out.physical_device = c.physical_device();
        out.device = c.device().handle();
        out.queue_family_index = c.queue_family();
        out.owns_device = c.owns_device() as u32;
        out.timeline_semaphores = c.has_timeline_semaphores() as u32;
        out.device_uuid = c.device_uuid();
        out.driver_uuid = c.driver_uuid();
        out.validation_messages = c.validation_messages().len().min(u32::MAX as usize) as u32;
        out.device_name = [0; 256];
        for (o, b) in out.device_name.iter_mut().zip(c.device_name().bytes().take(255)) {
            *o = b as c_char;
        }
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Resolves a context handle (for the other modules).
pub(crate) fn get(ctx: *const extmem_context) -> CResult<Arc<Context>> {
    handles::get(ctx).map(|c| Arc::clone(&*c))
}
