//! An image allocated by vulkano's allocator (exportable blocks, suballocated after a buffer
//! so it may sit at an offset), filled through extmem's commands on vulkano's queue, exported
//! through extmem and imported by another process (this test binary again, `--import`), which
//! checks every byte; the vulkano buffer it was filled from likewise. Runs without libtest's harness so it can be its own second process.

use extmem::external;
use extmem::sync::Holder;
use extmem::transport::socket::socket_dir;
use extmem::transport::{Channel, Listener, Message};
use extmem::validation::{ValidationLog, VALIDATION_LAYER};
use extmem::{pattern, vk, Context, ContextOptions, HandleType, Handoff, SharedMemory};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;
use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage};
use vulkano::device::{Device, DeviceCreateInfo, DeviceExtensions, QueueCreateInfo, QueueFlags};
use vulkano::format::Format;
use vulkano::image::{Image, ImageCreateInfo, ImageType, ImageUsage};
use vulkano::instance::{Instance, InstanceCreateInfo, InstanceExtensions};
use vulkano::memory::allocator::{
    AllocationCreateInfo, GenericMemoryAllocatorCreateInfo, MemoryTypeFilter, StandardMemoryAllocator,
};
use vulkano::memory::ExternalMemoryHandleTypes;
use vulkano::{VulkanLibrary, VulkanObject};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const WIDTH: u32 = 128;
const HEIGHT: u32 = 96;
const SEED: u64 = 0x7u64 << 40;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--import") {
        if let Err(e) = args.get(i + 1).ok_or_else(|| "--import needs a socket".into()).and_then(|p| import(p)) {
            eprintln!("vulkano importer: {e}");
            std::process::exit(1);
        }
        return;
    }
    // libtest's arguments (filters, --test-threads) do not apply to this one test.
    println!("\nrunning 1 test");
    match export() {
        Ok(detail) => {
            println!("test vulkano_image_exported_through_extmem_is_imported_by_another_process ... ok ({detail})");
            println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n");
        }
        Err(e) => {
            let mut why = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                why += &format!(": {s}");
                source = s.source();
            }
            println!("test vulkano_image_exported_through_extmem_is_imported_by_another_process ... FAILED: {why}");
            println!("\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n");
            std::process::exit(1);
        }
    }
}

fn export() -> Res<String> {
    // A vulkano program with the validation layer, whose messages extmem's log collects.
    let library = VulkanLibrary::new()?;
    let validate = library.layer_properties()?.any(|l| l.name() == VALIDATION_LAYER.to_str().unwrap_or_default());
    let instance = Instance::new(
        library,
        InstanceCreateInfo {
            enabled_layers: if validate { vec![VALIDATION_LAYER.to_string_lossy().into_owned()] } else { vec![] },
            enabled_extensions: InstanceExtensions { ext_debug_utils: validate, ..InstanceExtensions::empty() },
            ..Default::default()
        },
    )?;
    // SAFETY: loads the system loader for the messenger on vulkano's live instance.
    let entry = unsafe { ash::Entry::load()? };
    let ash_instance = unsafe { ash::Instance::load(entry.static_fn(), instance.handle()) };
    let mut log = ValidationLog::default();
    if validate {
        log.install(&entry, &ash_instance)?;
    }
    let result = export_on(&instance, validate);
    let messages: Vec<String> = log.messages().into_iter().filter(|m| !vulkanos_own_query(m)).collect();
    log.uninstall();
    let detail = result?;
    if !messages.is_empty() {
        return Err(format!("validation messages: {messages:?}").into());
    }
    Ok(detail)
}

/// The one message vulkano's own calls produce with the validation layer this project tests
/// with (1.3.239): vulkano 0.35 asks `vkGetPhysicalDeviceProperties2` for the property
/// structures of every extension the driver lists, some newer than that layer's headers
/// ("unknown VkStructureType"; NVIDIA's driver 580 lists nine such extensions, lavapipe 22.3
/// none). Anything else fails the test.
fn vulkanos_own_query(message: &str) -> bool {
    message.contains("VUID-VkPhysicalDeviceProperties2-pNext-pNext")
        && message.contains("vkGetPhysicalDeviceProperties2: pProperties->pNext chain includes a structure with unknown VkStructureType")
}

fn export_on(instance: &Arc<Instance>, validate: bool) -> Res<String> {
    // A GPU where there is one (the importer's Context::new prefers one the same way).
    let devices: Vec<_> = instance.enumerate_physical_devices()?.collect();
    let is_gpu = |p: &&Arc<vulkano::device::physical::PhysicalDevice>| {
        use vulkano::device::physical::PhysicalDeviceType as T;
        matches!(p.properties().device_type, T::DiscreteGpu | T::IntegratedGpu)
    };
    let physical = devices.iter().find(is_gpu).or(devices.first()).ok_or("no Vulkan device")?.clone();
    let family = physical
        .queue_family_properties()
        .iter()
        .position(|q| q.queue_flags.intersects(QueueFlags::GRAPHICS | QueueFlags::COMPUTE))
        .ok_or("no graphics or compute queue")? as u32;
    let (device, mut queues) = Device::new(
        physical.clone(),
        DeviceCreateInfo {
            queue_create_infos: vec![QueueCreateInfo { queue_family_index: family, ..Default::default() }],
            enabled_extensions: DeviceExtensions { khr_external_memory_fd: true, ..DeviceExtensions::empty() },
            ..Default::default()
        },
    )?;
    let queue = queues.next().ok_or("no queue")?;

    // vulkano's allocator, its blocks exportable as opaque fds.
    let types = physical.memory_properties().memory_types.len();
    let export = vec![ExternalMemoryHandleTypes::OPAQUE_FD; types];
    let block_sizes = vec![16 << 20; types];
    let allocator = Arc::new(StandardMemoryAllocator::new(
        device.clone(),
        GenericMemoryAllocatorCreateInfo {
            block_sizes: &block_sizes,
            export_handle_types: &export,
            ..Default::default()
        },
    ));
    let device_local =
        AllocationCreateInfo { memory_type_filter: MemoryTypeFilter::PREFER_DEVICE, ..Default::default() };
    // Something else in the block first, so the image may start at an offset in it.
    let _neighbour = Buffer::new_slice::<u8>(
        allocator.clone(),
        BufferCreateInfo {
            usage: BufferUsage::TRANSFER_DST,
            external_memory_handle_types: ExternalMemoryHandleTypes::OPAQUE_FD,
            ..Default::default()
        },
        device_local.clone(),
        3000,
    )?;
    let image = Image::new(
        allocator.clone(),
        ImageCreateInfo {
            image_type: ImageType::Dim2d,
            format: Format::R8G8B8A8_UNORM,
            extent: [WIDTH, HEIGHT, 1],
            usage: ImageUsage::TRANSFER_SRC | ImageUsage::TRANSFER_DST,
            external_memory_handle_types: ExternalMemoryHandleTypes::OPAQUE_FD,
            ..Default::default()
        },
        device_local,
    )?;
    let bytes = pattern::fill((WIDTH * HEIGHT * 4) as usize, SEED);
    let staging = Buffer::from_iter(
        allocator.clone(),
        // Every block of this allocator is exportable, so everything in it is made external.
        BufferCreateInfo {
            usage: BufferUsage::TRANSFER_SRC,
            external_memory_handle_types: ExternalMemoryHandleTypes::OPAQUE_FD,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_HOST | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
            ..Default::default()
        },
        bytes,
    )?;

    // extmem on vulkano's device: fill the image and release it to the other side, submitted
    // inside vulkano's queue lock.
    let ctx = extmem_vulkano::context(&queue)?;
    let raw = extmem_vulkano::raw_image(&image, HandleType::OpaqueFd)?;
    let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
    let (write, transfer) = (vk::AccessFlags::TRANSFER_WRITE, vk::PipelineStageFlags::TRANSFER);
    ctx.submit(|d, cb| {
        raw.record_acquire(&ctx, cb, Holder::Fresh, dst, write, transfer);
        let region = vk::BufferImageCopy::default()
            .buffer_offset(staging.offset())
            .image_subresource(
                vk::ImageSubresourceLayers::default().aspect_mask(vk::ImageAspectFlags::COLOR).layer_count(1),
            )
            .image_extent(vk::Extent3D { width: WIDTH, height: HEIGHT, depth: 1 });
        // SAFETY: live buffer and image; the command buffer is recording.
        unsafe { d.cmd_copy_buffer_to_image(cb, staging.buffer().handle(), image.handle(), dst, &[region]) };
        raw.record_release(&ctx, cb, dst, write, transfer);
    })?;

    // Export through extmem and let another process check it.
    // SAFETY: `raw` describes vulkano's live image and block, which outlive the exchange.
    let (descriptor, fd) = unsafe { external::export(&ctx, &raw)? };
    // The staging buffer too: a vulkano buffer in a host-visible exportable block.
    let raw_staging = extmem_vulkano::raw_buffer(&staging, HandleType::OpaqueFd)?;
    // SAFETY: as above, for the staging buffer.
    let (staging_descriptor, staging_fd) = unsafe { external::export(&ctx, &raw_staging)? };
    let path = socket_dir().join(format!("vulkano-test-{}.sock", std::process::id()));
    let listener = Listener::bind(&path)?;
    let mut child = std::process::Command::new(std::env::current_exe()?).arg("--import").arg(&path).spawn()?;
    let verdict = (|| -> Res<Message> {
        let channel = listener.accept(Duration::from_secs(30))?;
        channel.send(&Message::Share(descriptor), &[fd.as_fd()])?;
        channel.send(&Message::Share(staging_descriptor), &[staging_fd.as_fd()])?;
        Ok(channel.recv_plain("a verdict")?)
    })();
    let status = child.wait()?;
    drop(ctx);
    match verdict? {
        Message::Verdict { ok: true, detail } if status.success() => Ok(format!(
            "{detail}; image at offset {} of a {}-byte vulkano block{}",
            raw.offset,
            raw.allocation_size,
            if validate { ", validation layer on" } else { ", no validation layer installed" }
        )),
        other => Err(format!("importer said {other:?}, exit {status}").into()),
    }
}

fn import(path: &str) -> Res<()> {
    let ctx = Context::new(&ContextOptions::default().validation(true))?;
    let channel = Channel::connect(std::path::Path::new(path))?;
    let mut problems: Vec<String> = Vec::new();
    let mut checked = 0;
    // The image (released to this side), then the staging buffer it was filled from.
    for what in ["image", "buffer"] {
        let (descriptor, fd) = channel.recv_share()?;
        let shared = SharedMemory::import(&ctx, &descriptor, fd)?;
        let bytes = shared.read(Handoff::host())?;
        if bytes.len() != (WIDTH * HEIGHT * 4) as usize {
            problems.push(format!("{what}: {} bytes, expected {}", bytes.len(), WIDTH * HEIGHT * 4));
        }
        if let Some((i, got, want)) = pattern::first_mismatch(&bytes, SEED) {
            problems.push(format!("{what} byte {i}: {got:#04x}, expected {want:#04x}"));
        }
        checked += bytes.len();
    }
    problems.extend(ctx.validation_messages());
    let ok = problems.is_empty();
    let detail = if ok {
        format!("{checked} bytes of an image and a buffer checked in another process")
    } else {
        problems.join("; ")
    };
    channel.send(&Message::Verdict { ok, detail: detail.clone() }, &[])?;
    if ok {
        Ok(())
    } else {
        Err(detail.into())
    }
}
