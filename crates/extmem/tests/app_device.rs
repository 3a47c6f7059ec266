//! extmem on the application's own instance and device (`Context::from_app`) and on resources
//! the application owns (`extmem::external`), on lavapipe with validation: what is missing is
//! named, the queue is used only as allowed, nothing of the application's is destroyed, and
//! bad descriptions of application memory are refused before the driver is asked.

mod common;

use extmem::external::{self, RawMemory, RawResource};
use extmem::sync::Holder;
use extmem::validation::{ValidationLog, VALIDATION_LAYER};
use extmem::{
    vk, AppDevice, BufferDesc, Context, Dedicated, Error, HandleType, Handoff, QueueAccess, ResourceDesc, SharedMemory,
};
use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// An application's own instance and device (validation on), with the device extensions of
/// `extensions` the device offers enabled.
struct App {
    entry: ash::Entry,
    instance: ash::Instance,
    physical_device: vk::PhysicalDevice,
    device: ash::Device,
    family: u32,
    enabled: Vec<&'static CStr>,
    log: ValidationLog,
}

impl App {
    fn new(extensions: &[&'static CStr]) -> App {
        Self::with_features(extensions, false)
    }

    /// [`App::new`], with `timelineSemaphore` enabled when `timeline`.
    fn with_features(extensions: &[&'static CStr], timeline: bool) -> App {
        common::init();
        // SAFETY: valid create infos; everything is destroyed in `Drop`.
        unsafe {
            let entry = ash::Entry::load().expect("loader");
            let layers = [VALIDATION_LAYER.as_ptr()];
            let ext = [ash::ext::debug_utils::NAME.as_ptr()];
            let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_2);
            let info = vk::InstanceCreateInfo::default()
                .application_info(&app)
                .enabled_layer_names(&layers)
                .enabled_extension_names(&ext);
            let instance = entry.create_instance(&info, None).expect("instance");
            let mut log = ValidationLog::default();
            log.install(&entry, &instance).expect("messenger");
            let physical_device = instance.enumerate_physical_devices().expect("devices")[0];
            let offered = instance.enumerate_device_extension_properties(physical_device).expect("extensions");
            let enabled: Vec<&'static CStr> = extensions
                .iter()
                .copied()
                .filter(|e| offered.iter().any(|o| o.extension_name_as_c_str() == Ok(e)))
                .collect();
            let names: Vec<_> = enabled.iter().map(|e| e.as_ptr()).collect();
            let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(0).queue_priorities(&[1.0])];
            let mut features12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
            let mut info = vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&names);
            if timeline {
                info = info.push_next(&mut features12);
            }
            let device = instance.create_device(physical_device, &info, None).expect("device");
            App { entry, instance, physical_device, device, family: 0, enabled, log }
        }
    }

    fn borrowed(&self, access: QueueAccess) -> AppDevice {
        // SAFETY: a live device created with one queue in family 0.
        let queue = unsafe { self.device.get_device_queue(self.family, 0) };
        AppDevice::new(&self.entry, &self.instance, self.physical_device, &self.device, self.family, queue)
            .extensions(self.enabled.iter().copied())
            .queue_access(access)
    }

    fn assert_clean(&self) {
        let m = self.log.messages();
        assert!(m.is_empty(), "validation: {m:?}");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // SAFETY: the contexts made on these objects are gone; destroyed once, here.
        unsafe {
            self.device.destroy_device(None);
            self.log.uninstall();
            self.instance.destroy_instance(None);
        }
    }
}

fn context(app: &App, access: QueueAccess) -> Arc<Context> {
    // SAFETY: the app's live objects outlive the context (dropped before `app`).
    unsafe { Context::from_app(app.borrowed(access)) }.expect("borrowed context")
}

fn buffer_desc() -> BufferDesc {
    BufferDesc::new(65_536, vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
}

#[test]
fn a_device_without_the_required_extension_is_refused_naming_it() {
    let app = App::new(&[]);
    // SAFETY: live objects.
    let err = unsafe { Context::from_app(app.borrowed(QueueAccess::RecordOnly)) }.err().expect("refused");
    let text = err.to_string();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(text.contains("VK_KHR_external_memory_fd") && text.contains("required_extensions"), "{text}");
    app.assert_clean();
}

#[test]
fn a_borrowed_context_never_destroys_the_applications_device() {
    let app = App::new(Context::required_extensions());
    let ctx = context(&app, QueueAccess::RecordOnly);
    assert!(!ctx.owns_device());
    let shared = SharedMemory::new_buffer(&ctx, buffer_desc(), HandleType::OpaqueFd, Dedicated::Always).unwrap();
    drop(shared);
    drop(ctx);
    // The device is still the application's and alive: it makes and destroys a buffer.
    let info = vk::BufferCreateInfo::default().size(256).usage(vk::BufferUsageFlags::TRANSFER_DST);
    // SAFETY: the live device; the buffer is destroyed at once.
    unsafe {
        let b = app.device.create_buffer(&info, None).expect("the device is alive");
        app.device.destroy_buffer(b, None);
    }
    app.assert_clean();
}

#[test]
fn record_only_refuses_to_submit_and_the_queue_lock_or_callback_is_honoured() {
    let app = App::new(Context::required_extensions());
    let ctx = context(&app, QueueAccess::RecordOnly);
    let err = ctx.submit(|_, _| {}).expect_err("no submission without a lock");
    assert!(err.to_string().contains("record extmem's commands into your command buffer"), "{err}");
    drop(ctx);

    // Under the application's lock: while another thread holds it, the submission waits.
    let lock = Arc::new(Mutex::new(()));
    let ctx = context(&app, QueueAccess::Lock(lock.clone()));
    let held = lock.lock().unwrap();
    let submitted = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        let (ctx, submitted) = (&ctx, &submitted);
        let t = s.spawn(move || {
            ctx.submit(|_, _| {}).unwrap();
            submitted.fetch_add(1, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(submitted.load(Ordering::SeqCst), 0, "submitted while the application held its queue");
        drop(held);
        t.join().unwrap();
    });
    assert_eq!(submitted.load(Ordering::SeqCst), 1);
    drop(ctx);

    // Inside the application's callback.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let ctx = context(
        &app,
        QueueAccess::with(move |submit| {
            counted.fetch_add(1, Ordering::SeqCst);
            submit()
        }),
    );
    let shared = SharedMemory::new_buffer(&ctx, buffer_desc(), HandleType::OpaqueFd, Dedicated::Never).unwrap();
    shared.write(&[7u8; 65_536], Handoff::host()).unwrap();
    assert_eq!(shared.read(Handoff::host()).unwrap(), vec![7u8; 65_536]);
    assert!(calls.load(Ordering::SeqCst) >= 2, "write and read each submit through the callback");
    drop(shared);
    drop(ctx);
    app.assert_clean();
}

#[test]
fn application_memory_exports_and_imports_into_application_owned_resources() {
    let app = App::new(Context::required_extensions());
    let ctx = context(&app, QueueAccess::Lock(Arc::new(Mutex::new(()))));
    let source = SharedMemory::new_buffer(&ctx, buffer_desc(), HandleType::OpaqueFd, Dedicated::Never).unwrap();
    let bytes: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 251) as u8).collect();
    source.write(&bytes, Handoff::host()).unwrap();
    let raw = source.into_raw().unwrap();

    // Exported from the application's description, imported into a resource the
    // application then owns (the same checks as SharedMemory::import), read back by extmem.
    // SAFETY: `raw` describes the live buffer and memory just handed over.
    let (descriptor, fd) = unsafe { external::export(&ctx, &raw) }.unwrap();
    assert_eq!(descriptor.allocation_size, raw.allocation_size);
    assert_eq!(descriptor.device_uuid, ctx.device_uuid());
    let imported = SharedMemory::import(&ctx, &descriptor, fd).unwrap().into_raw().unwrap();
    assert_eq!(imported.allocation_size, raw.allocation_size);
    let (descriptor, fd) = unsafe { external::export(&ctx, &raw) }.unwrap();
    let check = SharedMemory::import(&ctx, &descriptor, fd).unwrap();
    assert_eq!(check.read(Handoff::host()).unwrap(), bytes);
    drop(check);

    // The application records the hand-off into its own command buffer.
    // SAFETY: the app's device; the pool is destroyed after the work is waited for.
    unsafe {
        let d = &app.device;
        let pool =
            d.create_command_pool(&vk::CommandPoolCreateInfo::default().queue_family_index(app.family), None).unwrap();
        let cb = d
            .allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1),
            )
            .unwrap()[0];
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default()).unwrap();
        let (access, stage) = (vk::AccessFlags::TRANSFER_WRITE, vk::PipelineStageFlags::TRANSFER);
        imported.record_acquire(&ctx, cb, Holder::External, vk::ImageLayout::UNDEFINED, access, stage);
        d.cmd_fill_buffer(cb, imported.buffer().unwrap(), 0, vk::WHOLE_SIZE, 0x0101_0101);
        imported.record_release(&ctx, cb, vk::ImageLayout::UNDEFINED, access, stage);
        d.end_command_buffer(cb).unwrap();
        let queue = d.get_device_queue(app.family, 0);
        d.queue_submit(queue, &[vk::SubmitInfo::default().command_buffers(&[cb])], vk::Fence::null()).unwrap();
        d.queue_wait_idle(queue).unwrap();
        d.destroy_command_pool(pool, None);
    }
    let (descriptor, fd) = unsafe { external::export(&ctx, &raw) }.unwrap();
    let check = SharedMemory::import(&ctx, &descriptor, fd).unwrap();
    assert_eq!(check.read(Handoff::host()).unwrap(), vec![1u8; 65_536], "the fill through the import landed");
    drop(check);
    drop(ctx);
    // SAFETY: the application owns both resources; the GPU is idle.
    unsafe {
        for r in [raw, imported] {
            app.device.destroy_buffer(r.buffer().unwrap(), None);
            app.device.free_memory(r.memory, None);
        }
    }
    app.assert_clean();
}

#[test]
fn wrong_descriptions_of_application_memory_are_refused_before_the_driver_is_asked() {
    let app = App::new(Context::required_extensions());
    let ctx = context(&app, QueueAccess::RecordOnly);
    let raw = SharedMemory::new_buffer(&ctx, buffer_desc(), HandleType::OpaqueFd, Dedicated::Never)
        .unwrap()
        .into_raw()
        .unwrap();
    let refused = |r: RawMemory, what: &str| {
        // SAFETY: the objects are live; the description is wrong on purpose.
        let err = unsafe { external::export(&ctx, &r) }.expect_err("refused");
        assert!(err.to_string().contains(what), "{err} should mention {what:?}");
    };
    let count = ctx.memory_properties().memory_type_count;
    refused(RawMemory { memory_type_index: count, ..raw }, "cannot hold the resource");
    refused(RawMemory { allocation_size: 1024, ..raw }, "the allocation has 1024");
    refused(RawMemory { offset: raw.allocation_size, ..raw }, "at offset");
    refused(RawMemory { dedicated: true, offset: 64, allocation_size: u64::MAX, ..raw }, "dedicated allocation");
    let image_desc = extmem::ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 4, 4, vk::ImageUsageFlags::TRANSFER_SRC);
    refused(RawMemory { desc: ResourceDesc::Image(image_desc), ..raw }, "different kind of resource");
    refused(RawMemory { handle_type: HandleType::DmaBuf, ..raw }, "cannot export dma-buf memory");
    refused(RawMemory { handle_type: HandleType::HostAllocation, ..raw }, "memfd");
    // Semaphores need VK_KHR_external_semaphore_fd (and timeline ones the timelineSemaphore
    // feature), which this device did not enable: the errors say so.
    let err = unsafe { external::export_semaphore(&ctx, vk::Semaphore::null()) }.expect_err("refused");
    assert!(err.to_string().contains("VK_KHR_external_semaphore_fd"), "{err}");
    let err = extmem::sync::SharedSemaphore::new_timeline(&ctx).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("VK_KHR_external_semaphore_fd and the timelineSemaphore feature"), "{text}");
    drop(ctx);
    // SAFETY: the application's; nothing uses them.
    unsafe {
        let RawResource::Buffer(b) = raw.resource else { unreachable!() };
        app.device.destroy_buffer(b, None);
        app.device.free_memory(raw.memory, None);
    }
    app.assert_clean();
}

#[test]
fn application_semaphores_are_exported_and_imported() {
    let extensions = [ash::khr::external_memory_fd::NAME, ash::khr::external_semaphore_fd::NAME];
    let app = App::with_features(&extensions, true);
    // SAFETY: a live device created with one queue in family 0.
    let queue = unsafe { app.device.get_device_queue(app.family, 0) };
    let borrowed = AppDevice::new(&app.entry, &app.instance, app.physical_device, &app.device, app.family, queue)
        .extensions(app.enabled.iter().copied())
        .timeline_semaphores(true);
    // SAFETY: the app's live objects outlive the context.
    let ctx = unsafe { Context::from_app(borrowed) }.expect("borrowed context");
    if !extmem::sync::can_share_semaphores(&ctx, extmem::sync::SemaphoreKind::Timeline) {
        println!(
            "SKIPPED: {} cannot share timeline semaphores as opaque fds (lavapipe has no external semaphores)",
            ctx.device_name()
        );
        drop(ctx);
        app.assert_clean();
        return;
    }
    let mut ty = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
    let mut export =
        vk::ExportSemaphoreCreateInfo::default().handle_types(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD);
    let mut ty2 = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
    // SAFETY: valid create infos; both semaphores are destroyed below, with nothing pending.
    unsafe {
        let d = &app.device;
        let exported = d
            .create_semaphore(&vk::SemaphoreCreateInfo::default().push_next(&mut ty).push_next(&mut export), None)
            .unwrap();
        let imported = d.create_semaphore(&vk::SemaphoreCreateInfo::default().push_next(&mut ty2), None).unwrap();
        let fd = external::export_semaphore(&ctx, exported).unwrap();
        external::import_semaphore(&ctx, imported, fd).unwrap();
        // A signal through one handle is seen through the other: they share the payload.
        d.signal_semaphore(&vk::SemaphoreSignalInfo::default().semaphore(exported).value(5)).unwrap();
        assert_eq!(d.get_semaphore_counter_value(imported).unwrap(), 5);
        d.destroy_semaphore(imported, None);
        d.destroy_semaphore(exported, None);
    }
    drop(ctx);
    app.assert_clean();
}
