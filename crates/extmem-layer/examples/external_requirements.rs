//! Does marking a resource external change what it needs? For a spread of buffers and images,
//! prints `vkGet*MemoryRequirements2` (size, alignment, memory types, dedicated preferred or
//! required) without and with `VkExternalMemoryBufferCreateInfo` / `VkExternalMemoryImageCreateInfo`
//! (OPAQUE_FD), and a closing line counting the resources whose requirements differ. The layer's
//! choice to mark the resources of VK_NV_external_memory devices rests on this answer.
//!
//! `cargo run -p extmem-layer --example external_requirements` (no layer involved; device 0, or
//! `EXTMEM_DEVICE=N`).

use ash::vk;

const OPAQUE_FD: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;

/// One resource's requirements as the driver reports them.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Requirements {
    size: u64,
    alignment: u64,
    memory_type_bits: u32,
    prefers_dedicated: bool,
    requires_dedicated: bool,
}

impl std::fmt::Display for Requirements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "size {} align {} types {:#x} dedicated {}",
            self.size,
            self.alignment,
            self.memory_type_bits,
            match (self.requires_dedicated, self.prefers_dedicated) {
                (true, _) => "required",
                (false, true) => "preferred",
                _ => "no",
            }
        )
    }
}

fn read(req: vk::MemoryRequirements, dedicated: &vk::MemoryDedicatedRequirements) -> Requirements {
    Requirements {
        size: req.size,
        alignment: req.alignment,
        memory_type_bits: req.memory_type_bits,
        prefers_dedicated: dedicated.prefers_dedicated_allocation == vk::TRUE,
        requires_dedicated: dedicated.requires_dedicated_allocation == vk::TRUE,
    }
}

fn buffer_requirements(dev: &ash::Device, info: &vk::BufferCreateInfo, external: bool) -> Option<Requirements> {
    let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(OPAQUE_FD);
    let mut info = *info;
    if external {
        info = info.push_next(&mut ext);
    }
    // SAFETY: a valid create info on a live device; the buffer is destroyed at once.
    unsafe {
        let buffer = dev.create_buffer(&info, None).ok()?;
        let mut dedicated = vk::MemoryDedicatedRequirements::default();
        let mut req = vk::MemoryRequirements2::default().push_next(&mut dedicated);
        dev.get_buffer_memory_requirements2(&vk::BufferMemoryRequirementsInfo2::default().buffer(buffer), &mut req);
        dev.destroy_buffer(buffer, None);
        let plain = req.memory_requirements;
        Some(read(plain, &dedicated))
    }
}

fn image_requirements(dev: &ash::Device, info: &vk::ImageCreateInfo, external: bool) -> Option<Requirements> {
    let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(OPAQUE_FD);
    let mut info = *info;
    if external {
        info = info.push_next(&mut ext);
    }
    // SAFETY: a valid create info on a live device; the image is destroyed at once.
    unsafe {
        let image = dev.create_image(&info, None).ok()?;
        let mut dedicated = vk::MemoryDedicatedRequirements::default();
        let mut req = vk::MemoryRequirements2::default().push_next(&mut dedicated);
        dev.get_image_memory_requirements2(&vk::ImageMemoryRequirementsInfo2::default().image(image), &mut req);
        dev.destroy_image(image, None);
        let plain = req.memory_requirements;
        Some(read(plain, &dedicated))
    }
}

/// Whether the driver can export an image of this kind as OPAQUE_FD (the layer marks only those).
fn image_exportable(instance: &ash::Instance, pd: vk::PhysicalDevice, info: &vk::ImageCreateInfo) -> bool {
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(OPAQUE_FD);
    let query = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(info.format)
        .ty(info.image_type)
        .tiling(info.tiling)
        .usage(info.usage)
        .flags(info.flags)
        .push_next(&mut ext_info);
    let mut ext = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext);
    // SAFETY: valid arguments.
    let r = unsafe { instance.get_physical_device_image_format_properties2(pd, &query, &mut props) };
    r.is_ok()
        && ext.external_memory_properties.external_memory_features.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: loading the system's Vulkan loader.
    let entry = unsafe { ash::Entry::load() }?;
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    // SAFETY: a valid create info.
    let instance = unsafe { entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None) }?;
    // SAFETY: a live instance.
    let devices = unsafe { instance.enumerate_physical_devices() }?;
    let index: usize = std::env::var("EXTMEM_DEVICE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let pd = *devices.get(index).ok_or("no such Vulkan device")?;
    // SAFETY: a live physical device.
    let props = unsafe { instance.get_physical_device_properties(pd) };
    println!("device: {:?} (driver version {:#x})", props.device_name_as_c_str()?, props.driver_version);
    let priorities = [1.0];
    let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(0).queue_priorities(&priorities)];
    let names = [ash::khr::external_memory_fd::NAME.as_ptr()];
    let info = vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&names);
    // SAFETY: valid create info.
    let dev = unsafe { instance.create_device(pd, &info, None) }?;

    let (mut compared, mut differ) = (0, 0);
    let mut report = |what: String, plain: Option<Requirements>, external: Option<Requirements>| {
        if let (Some(p), Some(e)) = (plain, external) {
            compared += 1;
            let mark = if p == e {
                "same"
            } else {
                differ += 1;
                "DIFFERS"
            };
            println!("{mark:7} {what}: plain {p} | external {e}");
        }
    };
    use vk::BufferUsageFlags as B;
    let buffer_usages = [
        B::TRANSFER_SRC | B::TRANSFER_DST,
        B::STORAGE_BUFFER,
        B::UNIFORM_BUFFER | B::TRANSFER_DST,
        B::VERTEX_BUFFER | B::INDEX_BUFFER,
        B::STORAGE_BUFFER | B::TRANSFER_SRC | B::TRANSFER_DST | B::UNIFORM_TEXEL_BUFFER,
    ];
    for size in [1u64, 256, 4096, 65_537, 1 << 20, (16 << 20) + 3, 256 << 20] {
        for usage in buffer_usages {
            let info = vk::BufferCreateInfo::default().size(size).usage(usage);
            let plain = buffer_requirements(&dev, &info, false);
            report(format!("buffer {size} B {usage:?}"), plain, buffer_requirements(&dev, &info, true));
        }
    }
    use vk::ImageUsageFlags as U;
    let formats = [
        vk::Format::R8G8B8A8_UNORM,
        vk::Format::B8G8R8A8_SRGB,
        vk::Format::R8_UNORM,
        vk::Format::R16G16B16A16_SFLOAT,
        vk::Format::R32_SFLOAT,
        vk::Format::R32G32B32A32_SFLOAT,
        vk::Format::A2B10G10R10_UNORM_PACK32,
        vk::Format::D32_SFLOAT,
        vk::Format::D24_UNORM_S8_UINT,
        vk::Format::BC1_RGB_UNORM_BLOCK,
        vk::Format::G8_B8R8_2PLANE_420_UNORM,
    ];
    let usages = [
        U::TRANSFER_SRC | U::TRANSFER_DST,
        U::SAMPLED | U::TRANSFER_DST,
        U::COLOR_ATTACHMENT | U::SAMPLED,
        U::STORAGE,
        U::DEPTH_STENCIL_ATTACHMENT | U::SAMPLED,
    ];
    let extents = [(1, 1, 1), (64, 32, 1), (1920, 1080, 1), (3840, 2160, 1), (4096, 4096, 1)];
    for format in formats {
        for tiling in [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR] {
            for usage in usages {
                for (w, h, d) in extents {
                    let (w, h) = if format == vk::Format::G8_B8R8_2PLANE_420_UNORM { (w * 2, h * 2) } else { (w, h) };
                    let info = vk::ImageCreateInfo::default()
                        .image_type(vk::ImageType::TYPE_2D)
                        .format(format)
                        .extent(vk::Extent3D { width: w, height: h, depth: d })
                        .mip_levels(1)
                        .array_layers(1)
                        .samples(vk::SampleCountFlags::TYPE_1)
                        .tiling(tiling)
                        .usage(usage)
                        .initial_layout(vk::ImageLayout::UNDEFINED);
                    // Only what the driver accepts as an exportable image: the layer marks no other.
                    if !image_exportable(&instance, pd, &info) {
                        continue;
                    }
                    let what = format!("image {format:?} {tiling:?} {w}x{h} {usage:?}");
                    report(what, image_requirements(&dev, &info, false), image_requirements(&dev, &info, true));
                }
            }
        }
    }
    println!("external_requirements: {differ} of {compared} resources differ when marked external (OPAQUE_FD)");
    // SAFETY: nothing made from them is alive.
    unsafe {
        dev.destroy_device(None);
        instance.destroy_instance(None);
    }
    Ok(())
}
