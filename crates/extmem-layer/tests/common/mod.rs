//! What several of the layer's tests share: the 64×32 RGBA8 test image, memory and images made
//! exportable the VK_NV_external_memory way, and comparing NV query answers.

#![allow(dead_code)]

use ash::vk;
use extmem_testkit::TestDevice;

pub const EXTENT: vk::Extent3D = vk::Extent3D { width: 64, height: 32, depth: 1 };
pub const FORMAT: vk::Format = vk::Format::R8G8B8A8_UNORM;
/// The bytes of one `EXTENT` image in `FORMAT`.
pub const BYTES: usize = 64 * 32 * 4;

/// A 2D `FORMAT` image of `EXTENT` for transfers, OPTIMAL tiling, UNDEFINED at first.
pub fn image_info<'a>() -> vk::ImageCreateInfo<'a> {
    vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(FORMAT)
        .extent(EXTENT)
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
        .initial_layout(vk::ImageLayout::UNDEFINED)
}

/// Memory for `req` allocated with `VkExportMemoryAllocateInfoNV` of `handle_types`.
pub fn nv_memory(
    dev: &TestDevice,
    req: vk::MemoryRequirements,
    handle_types: vk::ExternalMemoryHandleTypeFlagsNV,
) -> vk::DeviceMemory {
    let mut export = vk::ExportMemoryAllocateInfoNV::default().handle_types(handle_types);
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(dev.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()))
        .push_next(&mut export);
    // SAFETY: a valid allocate info on a live device.
    unsafe { dev.device.allocate_memory(&info, None) }.expect("vkAllocateMemory with the NV structure")
}

/// An image and memory made exportable the NV way, bound together.
pub struct Exportable {
    pub image: vk::Image,
    pub memory: vk::DeviceMemory,
    pub size: u64,
    pub memory_type: u32,
}

/// An [`image_info`] image created with `VkExternalMemoryImageCreateInfoNV` of `handle_type`,
/// bound to [`nv_memory`] of the same handle type.
pub fn create_nv_image(dev: &TestDevice, handle_type: vk::ExternalMemoryHandleTypeFlagsNV) -> Exportable {
    let d = &dev.device;
    let mut nv_image = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(handle_type);
    // SAFETY: valid create infos on a live device.
    unsafe {
        let image =
            d.create_image(&image_info().push_next(&mut nv_image), None).expect("vkCreateImage with the NV struct");
        let req = d.get_image_memory_requirements(image);
        let memory = nv_memory(dev, req, handle_type);
        d.bind_image_memory(image, memory, 0).expect("bind");
        let memory_type = dev.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty());
        Exportable { image, memory, size: req.size, memory_type }
    }
}

/// Whether two NV query answers agree member by member (the structure has padding, so never
/// by bytes).
pub fn same_properties(x: &vk::ExternalImageFormatPropertiesNV, y: &vk::ExternalImageFormatPropertiesNV) -> bool {
    let (p, q) = (x.image_format_properties, y.image_format_properties);
    p.max_extent == q.max_extent
        && p.max_mip_levels == q.max_mip_levels
        && p.max_array_layers == q.max_array_layers
        && p.sample_counts == q.sample_counts
        && p.max_resource_size == q.max_resource_size
        && x.external_memory_features == y.external_memory_features
        && x.export_from_imported_handle_types == y.export_from_imported_handle_types
        && x.compatible_handle_types == y.compatible_handle_types
}

/// Whether the driver itself (asked without the layer, on an API 1.3 instance of its own) gives
/// a buffer or image different memory requirements when it is made OPAQUE_FD-external. The
/// layer leaves such kinds unmarked (NVIDIA's driver: buffers and LINEAR images), so binding
/// NV-exportable memory to one is reported below the layer as 02726 / 02728.
pub fn marking_changes(buffer: Option<vk::BufferCreateInfo>, image: Option<vk::ImageCreateInfo>) -> bool {
    use extmem_testkit::{InstanceSpec, TestInstance, Validation};
    let inst = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let plain = TestDevice::new(&inst, &[]);
    let d = &plain.device;
    let fd = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;
    let ask = |marked: bool| {
        let mut out = vk::MemoryRequirements2::default();
        // SAFETY: valid create infos on a live API 1.3 device.
        unsafe {
            if let Some(mut b) = buffer {
                let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(fd);
                if marked {
                    b = b.push_next(&mut ext);
                }
                let info = vk::DeviceBufferMemoryRequirements::default().create_info(&b);
                d.get_device_buffer_memory_requirements(&info, &mut out);
            } else if let Some(mut i) = image {
                let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(fd);
                if marked {
                    i = i.push_next(&mut ext);
                }
                let info = vk::DeviceImageMemoryRequirements::default().create_info(&i);
                d.get_device_image_memory_requirements(&info, &mut out);
            }
        }
        let m = out.memory_requirements;
        (m.size, m.alignment, m.memory_type_bits)
    };
    let changes = ask(false) != ask(true);
    drop(plain);
    drop(inst);
    changes
}

/// Whether the driver itself offers the device extension `name` (asked without the layer).
pub fn driver_offers(name: &std::ffi::CStr) -> bool {
    use extmem_testkit::{InstanceSpec, TestInstance, Validation};
    let inst = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    // SAFETY: a live physical device.
    let list = unsafe { inst.instance.enumerate_device_extension_properties(inst.physical_device()) }.unwrap();
    list.iter().any(|e| e.extension_name_as_c_str() == Ok(name))
}
