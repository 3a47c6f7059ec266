//! A program with its own ash instance and device exports a buffer and an image through
//! extmem; a second process (this binary again, with `--import SOCKET`) imports both with
//! extmem and checks every byte. Exits non-zero on any mismatch or validation message.
//!
//! `cargo run -p extmem --example ash_own_device`

use extmem::external::{self, RawMemory, RawResource};
use extmem::sync::Holder;
use extmem::transport::{self, Channel, Listener, Message};
use extmem::validation::{ValidationLog, VALIDATION_LAYER};
use extmem::{
    vk, AppDevice, Context, ContextOptions, Dedicated, HandleType, Handoff, ImageDesc, QueueAccess, ResourceDesc,
    SharedMemory,
};
use std::error::Error;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Res<T> = Result<T, Box<dyn Error>>;

const BUFFER_BYTES: u64 = 1 << 20;
const WIDTH: u32 = 256;
const HEIGHT: u32 = 128;

/// The bytes both sides expect: no period shorter than the data.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--import") => args.get(2).ok_or_else(|| "--import needs the socket path".into()).and_then(|p| import(p)),
        _ => export(),
    };
    if let Err(e) = result {
        eprintln!("ash_own_device: {e}");
        std::process::exit(1);
    }
}

/// The application's own Vulkan: what any ash program already has.
struct App {
    entry: ash::Entry,
    instance: ash::Instance,
    physical_device: vk::PhysicalDevice,
    device: ash::Device,
    family: u32,
    queue: vk::Queue,
    /// The device extensions it enabled (extmem is told; Vulkan cannot be asked).
    extensions: Vec<&'static std::ffi::CStr>,
    validation: Option<ValidationLog>,
}

impl App {
    fn new() -> Res<App> {
        // SAFETY: loads the system's Vulkan loader; plain create calls with valid infos.
        unsafe {
            let entry = ash::Entry::load()?;
            let layers = entry.enumerate_instance_layer_properties()?;
            let validate = layers.iter().any(|l| l.layer_name_as_c_str() == Ok(VALIDATION_LAYER));
            let mut validation = validate.then(ValidationLog::default);
            let layer_names = if validate { vec![VALIDATION_LAYER.as_ptr()] } else { vec![] };
            let ext_names = if validate { vec![ash::ext::debug_utils::NAME.as_ptr()] } else { vec![] };
            let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_2);
            let info = vk::InstanceCreateInfo::default()
                .application_info(&app)
                .enabled_layer_names(&layer_names)
                .enabled_extension_names(&ext_names);
            let instance = entry.create_instance(&info, None)?;
            if let Some(v) = validation.as_mut() {
                v.install(&entry, &instance)?;
            }
            // A GPU where there is one (the importer's Context::new prefers one the same way).
            let devices = instance.enumerate_physical_devices()?;
            let is_gpu = |pd: &&vk::PhysicalDevice| {
                let t = instance.get_physical_device_properties(**pd).device_type;
                t == vk::PhysicalDeviceType::DISCRETE_GPU || t == vk::PhysicalDeviceType::INTEGRATED_GPU
            };
            let physical_device = *devices.iter().find(is_gpu).or(devices.first()).ok_or("no Vulkan device")?;
            let family = instance
                .get_physical_device_queue_family_properties(physical_device)
                .iter()
                .position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS))
                .ok_or("no graphics queue")? as u32;
            // extmem's required extension, plus semaphore sharing where the device has it.
            let offered = instance.enumerate_device_extension_properties(physical_device)?;
            let extensions: Vec<&'static std::ffi::CStr> = Context::required_extensions()
                .iter()
                .chain(Context::optional_extensions())
                .copied()
                .filter(|e| offered.iter().any(|o| o.extension_name_as_c_str() == Ok(e)))
                .collect();
            let names: Vec<_> = extensions.iter().map(|e| e.as_ptr()).collect();
            let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&[1.0])];
            let info = vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&names);
            let device = instance.create_device(physical_device, &info, None)?;
            let queue = device.get_device_queue(family, 0);
            Ok(App { entry, instance, physical_device, device, family, queue, extensions, validation })
        }
    }

    /// A buffer made the plain ash way, exportable as an opaque fd.
    fn exportable_buffer(&self, ctx: &Context, size: u64) -> Res<RawMemory> {
        let handle_type = HandleType::OpaqueFd;
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let mut external = vk::ExternalMemoryBufferCreateInfo::default().handle_types(handle_type.to_vk());
        let info = vk::BufferCreateInfo::default().size(size).usage(usage).push_next(&mut external);
        // SAFETY: valid create and allocate infos on the application's live device.
        unsafe {
            let buffer = self.device.create_buffer(&info, None)?;
            let req = self.device.get_buffer_memory_requirements(buffer);
            let memory_type_index = ctx
                .memory_type(
                    req.memory_type_bits,
                    vk::MemoryPropertyFlags::DEVICE_LOCAL,
                    vk::MemoryPropertyFlags::empty(),
                )
                .ok_or("no device-local memory type")?;
            let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_type.to_vk());
            let alloc = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(memory_type_index)
                .push_next(&mut export);
            let memory = self.device.allocate_memory(&alloc, None)?;
            self.device.bind_buffer_memory(buffer, memory, 0)?;
            Ok(RawMemory {
                resource: RawResource::Buffer(buffer),
                desc: ResourceDesc::Buffer(extmem::BufferDesc::new(size, usage)),
                memory,
                allocation_size: req.size,
                memory_type_index,
                dedicated: false,
                offset: 0,
                handle_type,
            })
        }
    }

    /// A host-visible buffer holding `bytes`, to copy from.
    fn staging(&self, ctx: &Context, bytes: &[u8]) -> Res<(vk::Buffer, vk::DeviceMemory)> {
        let info = vk::BufferCreateInfo::default().size(bytes.len() as u64).usage(vk::BufferUsageFlags::TRANSFER_SRC);
        let host = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        // SAFETY: valid infos; the mapping covers the allocation and is written within it.
        unsafe {
            let buffer = self.device.create_buffer(&info, None)?;
            let req = self.device.get_buffer_memory_requirements(buffer);
            let ty = ctx
                .memory_type(req.memory_type_bits, host, vk::MemoryPropertyFlags::empty())
                .ok_or("no host memory")?;
            let memory = self.device.allocate_memory(
                &vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(ty),
                None,
            )?;
            self.device.bind_buffer_memory(buffer, memory, 0)?;
            let ptr = self.device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())?;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast::<u8>(), bytes.len());
            self.device.unmap_memory(memory);
            Ok((buffer, memory))
        }
    }
}

fn export() -> Res<()> {
    let app = App::new()?;
    // extmem borrows the application's objects and submits only under its queue lock (here
    // it never submits: the application records extmem's barriers into its own commands).
    let queue_lock = Arc::new(Mutex::new(()));
    let borrowed = AppDevice::new(&app.entry, &app.instance, app.physical_device, &app.device, app.family, app.queue)
        .extensions(app.extensions.iter().copied())
        .queue_access(QueueAccess::Lock(queue_lock.clone()));
    // SAFETY: the objects live until after `ctx` and the resources are gone (end of function).
    let ctx = unsafe { Context::from_app(borrowed)? };

    // The buffer: the application's own, described to extmem. The image: made by extmem with
    // every check, then handed to the application to own.
    let buffer = app.exportable_buffer(&ctx, BUFFER_BYTES)?;
    let usage = vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST;
    let desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, WIDTH, HEIGHT, usage);
    let image = SharedMemory::new_image(&ctx, desc, HandleType::OpaqueFd, Dedicated::Always)?.into_raw()?;

    // Fill both from one staging buffer in the application's command buffer, with extmem's
    // acquire and release recorded around the copies.
    let bytes = pattern(BUFFER_BYTES as usize);
    let (staging, staging_memory) = app.staging(&ctx, &bytes)?;
    let pool_info = vk::CommandPoolCreateInfo::default().queue_family_index(app.family);
    let transfer = vk::PipelineStageFlags::TRANSFER;
    let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
    // SAFETY: the application's live objects; the command buffer is recorded, submitted under
    // the queue lock and waited for before anything it uses is destroyed.
    unsafe {
        let d = &app.device;
        let pool = d.create_command_pool(&pool_info, None)?;
        let cb = d.allocate_command_buffers(
            &vk::CommandBufferAllocateInfo::default().command_pool(pool).command_buffer_count(1),
        )?[0];
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())?;
        let write = vk::AccessFlags::TRANSFER_WRITE;
        buffer.record_acquire(&ctx, cb, Holder::Fresh, vk::ImageLayout::UNDEFINED, write, transfer);
        image.record_acquire(&ctx, cb, Holder::Fresh, dst, write, transfer);
        let whole = vk::BufferCopy::default().size(BUFFER_BYTES);
        d.cmd_copy_buffer(cb, staging, buffer.buffer().ok_or("buffer")?, &[whole]);
        let region = vk::BufferImageCopy::default()
            .image_subresource(
                vk::ImageSubresourceLayers::default().aspect_mask(vk::ImageAspectFlags::COLOR).layer_count(1),
            )
            .image_extent(vk::Extent3D { width: WIDTH, height: HEIGHT, depth: 1 });
        d.cmd_copy_buffer_to_image(cb, staging, image.image().ok_or("image")?, dst, &[region]);
        buffer.record_release(&ctx, cb, vk::ImageLayout::UNDEFINED, write, transfer);
        image.record_release(&ctx, cb, dst, write, transfer);
        d.end_command_buffer(cb)?;
        let fence = d.create_fence(&vk::FenceCreateInfo::default(), None)?;
        let cbs = [cb];
        {
            let _queue = queue_lock.lock().map_err(|_| "queue lock poisoned")?;
            d.queue_submit(app.queue, &[vk::SubmitInfo::default().command_buffers(&cbs)], fence)?;
        }
        d.wait_for_fences(&[fence], true, u64::MAX)?;
        d.destroy_fence(fence, None);
        d.destroy_command_pool(pool, None);
        d.destroy_buffer(staging, None);
        d.free_memory(staging_memory, None);
    }

    // Export both and hand them to the importing process.
    let path = transport::socket::socket_dir().join(format!("ash_own_device-{}.sock", std::process::id()));
    let listener = Listener::bind(&path)?;
    let mut child = std::process::Command::new(std::env::current_exe()?).arg("--import").arg(&path).spawn()?;
    let verdict = (|| -> Res<Message> {
        let channel = listener.accept(Duration::from_secs(30))?;
        for raw in [&buffer, &image] {
            // SAFETY: `raw` truthfully describes live objects of the application's device.
            let (descriptor, fd) = unsafe { external::export(&ctx, raw)? };
            channel.send(&Message::Share(descriptor), &[fd.as_fd()])?;
        }
        Ok(channel.recv_plain("a verdict")?)
    })();
    let status = child.wait()?;
    // The application destroys what it owns: extmem's context first, then resources, device.
    let messages = app.validation.as_ref().map(ValidationLog::messages).unwrap_or_default();
    let app_validated = app.validation.is_some();
    drop(ctx);
    // SAFETY: the importer is gone and the GPU work was waited for.
    unsafe {
        for raw in [&buffer, &image] {
            match raw.resource {
                RawResource::Image(i) => app.device.destroy_image(i, None),
                RawResource::Buffer(b) => app.device.destroy_buffer(b, None),
                _ => {}
            }
            app.device.free_memory(raw.memory, None);
        }
        app.device.destroy_device(None);
        let mut app = app;
        if let Some(v) = app.validation.as_mut() {
            v.uninstall();
        }
        app.instance.destroy_instance(None);
    }
    match verdict? {
        Message::Verdict { ok: true, detail } if status.success() && messages.is_empty() => {
            let checked = if app_validated { "validation layer on" } else { "no validation layer installed" };
            println!("ash_own_device: {detail} ({checked})");
            Ok(())
        }
        other => Err(format!("importer: {other:?}, exit {status}, validation messages: {messages:?}").into()),
    }
}

fn import(path: &str) -> Res<()> {
    let ctx = Context::new(&ContextOptions::default().validation(validation_installed()))?;
    let channel = Channel::connect(std::path::Path::new(path))?;
    let expected = pattern(BUFFER_BYTES as usize);
    let mut failures = Vec::new();
    let mut checked = 0;
    for what in ["buffer", "image"] {
        let (descriptor, fd) = channel.recv_share()?;
        let shared = SharedMemory::import(&ctx, &descriptor, fd)?;
        let bytes = shared.read(Handoff::host())?;
        let want = &expected[..bytes.len()];
        match bytes.iter().zip(want).position(|(a, b)| a != b) {
            Some(i) => failures.push(format!("{what} byte {i}: {:#04x}, expected {:#04x}", bytes[i], want[i])),
            None => checked += bytes.len(),
        }
    }
    failures.extend(ctx.validation_messages());
    let ok = failures.is_empty();
    let detail = if ok { format!("{checked} bytes of a buffer and an image checked") } else { failures.join("; ") };
    channel.send(&Message::Verdict { ok, detail: detail.clone() }, &[])?;
    if ok {
        Ok(())
    } else {
        Err(detail.into())
    }
}

fn validation_installed() -> bool {
    // SAFETY: loads the loader for a global query.
    let Ok(entry) = (unsafe { ash::Entry::load() }) else { return false };
    // SAFETY: a global query.
    let layers = unsafe { entry.enumerate_instance_layer_properties() }.unwrap_or_default();
    layers.iter().any(|l| l.layer_name_as_c_str() == Ok(VALIDATION_LAYER))
}
