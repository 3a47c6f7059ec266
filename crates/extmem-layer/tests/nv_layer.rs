//! The layer through the real loader, on the system's driver (lavapipe in CI), with the Khronos
//! validation layer above it (checking the application's NV usage) or below it (checking the
//! KHR calls the layer makes). Any validation message fails a test.

use ash::vk;
use extmem_testkit::{pattern, InstanceSpec, TestDevice, TestInstance, Validation, LAYER};
use std::ffi::CStr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

const NV_CAPS: &CStr = ash::nv::external_memory_capabilities::NAME;
const NV_MEM: &CStr = ash::nv::external_memory::NAME;
type NvHandle = vk::ExternalMemoryHandleTypeFlagsNV;

fn has(list: &[vk::ExtensionProperties], name: &CStr) -> bool {
    list.iter().any(|e| e.extension_name_as_c_str() == Ok(name))
}

fn device_extensions(inst: &TestInstance, layer: Option<&CStr>) -> Vec<vk::ExtensionProperties> {
    let pd = inst.physical_device();
    let mut count = 0;
    let f = inst.instance.fp_v1_0().enumerate_device_extension_properties;
    let lp = layer.map_or(std::ptr::null(), |l| l.as_ptr());
    // SAFETY: the two-call idiom on a live physical device.
    unsafe {
        assert_eq!(f(pd, lp, &mut count, std::ptr::null_mut()), vk::Result::SUCCESS);
        let mut v = vec![vk::ExtensionProperties::default(); count as usize];
        assert_eq!(f(pd, lp, &mut count, v.as_mut_ptr()), vk::Result::SUCCESS);
        v.truncate(count as usize);
        v
    }
}

/// `vkGetPhysicalDeviceExternalImageFormatPropertiesNV` as the application reaches it.
fn nv_query(
    inst: &TestInstance,
    format: vk::Format,
    tiling: vk::ImageTiling,
    usage: vk::ImageUsageFlags,
    handle_type: NvHandle,
) -> Result<vk::ExternalImageFormatPropertiesNV, vk::Result> {
    let nv = ash::nv::external_memory_capabilities::Instance::new(&inst.entry, &inst.instance);
    let mut out = vk::ExternalImageFormatPropertiesNV::default();
    // SAFETY: valid arguments on a live instance that enabled the extension.
    let r = unsafe {
        (nv.fp().get_physical_device_external_image_format_properties_nv)(
            inst.physical_device(),
            format,
            vk::ImageType::TYPE_2D,
            tiling,
            usage,
            vk::ImageCreateFlags::empty(),
            handle_type,
            &mut out,
        )
    };
    if r == vk::Result::SUCCESS {
        Ok(out)
    } else {
        Err(r)
    }
}

/// What the specification says the NV query must answer, computed from the core queries.
fn expected(
    inst: &TestInstance,
    format: vk::Format,
    tiling: vk::ImageTiling,
    usage: vk::ImageUsageFlags,
    handle_type: NvHandle,
) -> Result<vk::ExternalImageFormatPropertiesNV, vk::Result> {
    let pd = inst.physical_device();
    let i = &inst.instance;
    if handle_type.is_empty() {
        // SAFETY: valid arguments.
        let p = unsafe {
            i.get_physical_device_image_format_properties(
                pd,
                format,
                vk::ImageType::TYPE_2D,
                tiling,
                usage,
                vk::ImageCreateFlags::empty(),
            )
        }?;
        return Ok(vk::ExternalImageFormatPropertiesNV { image_format_properties: p, ..Default::default() });
    }
    let mut ext_info =
        vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(tiling)
        .usage(usage)
        .push_next(&mut ext_info);
    let mut ext = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext);
    // SAFETY: valid arguments.
    unsafe { i.get_physical_device_image_format_properties2(pd, &info, &mut props) }?;
    let image_format_properties = props.image_format_properties;
    let m = ext.external_memory_properties;
    if !m
        .external_memory_features
        .intersects(vk::ExternalMemoryFeatureFlags::EXPORTABLE | vk::ExternalMemoryFeatureFlags::IMPORTABLE)
    {
        return Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED);
    }
    let win32_pair = NvHandle::OPAQUE_WIN32 | NvHandle::OPAQUE_WIN32_KMT;
    let to_nv = |k: vk::ExternalMemoryHandleTypeFlags| {
        if k.contains(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD) {
            win32_pair
        } else {
            NvHandle::empty()
        }
    };
    Ok(vk::ExternalImageFormatPropertiesNV {
        image_format_properties,
        external_memory_features: vk::ExternalMemoryFeatureFlagsNV::from_raw(m.external_memory_features.as_raw()),
        export_from_imported_handle_types: to_nv(m.export_from_imported_handle_types),
        compatible_handle_types: to_nv(m.compatible_handle_types) | handle_type,
    })
}

fn same(
    a: &Result<vk::ExternalImageFormatPropertiesNV, vk::Result>,
    b: &Result<vk::ExternalImageFormatPropertiesNV, vk::Result>,
) -> bool {
    match (a, b) {
        (Err(x), Err(y)) => x == y,
        (Ok(x), Ok(y)) => {
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
        _ => false,
    }
}

const FORMATS: [vk::Format; 7] = [
    vk::Format::R8G8B8A8_UNORM,
    vk::Format::B8G8R8A8_SRGB,
    vk::Format::R16G16B16A16_SFLOAT,
    vk::Format::R32_SFLOAT,
    vk::Format::D32_SFLOAT,
    vk::Format::BC1_RGB_UNORM_BLOCK,
    vk::Format::R8G8B8_SSCALED,
];
const TILINGS: [vk::ImageTiling; 2] = [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR];
const USAGES: [vk::ImageUsageFlags; 4] = [
    vk::ImageUsageFlags::from_raw(vk::ImageUsageFlags::SAMPLED.as_raw() | vk::ImageUsageFlags::TRANSFER_DST.as_raw()),
    vk::ImageUsageFlags::COLOR_ATTACHMENT,
    vk::ImageUsageFlags::STORAGE,
    vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT,
];

#[test]
fn extensions_are_advertised_through_the_layer_only() {
    // Without the layer: nothing implements the NV extensions on this machine.
    let plain = TestInstance::new(&InstanceSpec::plain(Validation::AboveLayer));
    // SAFETY: global enumeration.
    let global = unsafe { plain.entry.enumerate_instance_extension_properties(None) }.unwrap();
    assert!(!has(&global, NV_CAPS), "the driver itself offers {NV_CAPS:?}: the layer's tests would prove nothing");
    assert!(!has(&device_extensions(&plain, None), NV_MEM));
    // The layer's own list, as its manifest gives it.
    // SAFETY: global enumeration.
    let ours = unsafe { plain.entry.enumerate_instance_extension_properties(Some(LAYER)) }.unwrap();
    assert!(ours.iter().any(|e| e.extension_name_as_c_str() == Ok(NV_CAPS) && e.spec_version == 1));
    plain.finish();
    let refused = TestInstance::try_new(&InstanceSpec { layer: false, ..InstanceSpec::nv(Validation::Off) });
    assert_eq!(refused.err(), Some(vk::Result::ERROR_EXTENSION_NOT_PRESENT));

    // With the layer: the device extension appears, with spec version 1, in both lists.
    for validation in [Validation::AboveLayer, Validation::BelowLayer] {
        let inst = TestInstance::new(&InstanceSpec::nv(validation));
        let all = device_extensions(&inst, None);
        let nv: Vec<_> = all.iter().filter(|e| e.extension_name_as_c_str() == Ok(NV_MEM)).collect();
        assert_eq!(nv.len(), 1, "exactly one VK_NV_external_memory in {all:?}");
        assert_eq!(nv[0].spec_version, 1);
        let layer_only = device_extensions(&inst, Some(LAYER));
        assert!(has(&layer_only, NV_MEM));
        inst.finish();
    }
}

#[test]
fn query_follows_the_specification_for_valid_input() {
    for validation in [Validation::AboveLayer, Validation::BelowLayer] {
        let inst = TestInstance::new(&InstanceSpec::nv(validation));
        let mut supported = 0;
        for format in FORMATS {
            for tiling in TILINGS {
                for usage in USAGES {
                    for handle_type in [NvHandle::empty(), NvHandle::OPAQUE_WIN32, NvHandle::OPAQUE_WIN32_KMT] {
                        let got = nv_query(&inst, format, tiling, usage, handle_type);
                        let want = expected(&inst, format, tiling, usage, handle_type);
                        assert!(
                            same(&got, &want),
                            "{format:?} {tiling:?} {usage:?} {handle_type:?}: got {got:?}, want {want:?}"
                        );
                        if let Ok(p) = got {
                            if !handle_type.is_empty() {
                                supported += 1;
                                assert!(p.compatible_handle_types.contains(handle_type));
                                assert!(p
                                    .external_memory_features
                                    .contains(vk::ExternalMemoryFeatureFlagsNV::EXPORTABLE));
                            }
                        }
                    }
                }
            }
        }
        assert!(supported > 10, "only {supported} exportable combinations: the matrix tests too little");
        // The common case an NV application asks for.
        let p = nv_query(
            &inst,
            vk::Format::R8G8B8A8_UNORM,
            vk::ImageTiling::OPTIMAL,
            vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
            NvHandle::OPAQUE_WIN32,
        )
        .unwrap();
        assert_eq!(p.compatible_handle_types, NvHandle::OPAQUE_WIN32 | NvHandle::OPAQUE_WIN32_KMT);
        inst.finish();
    }
}

#[test]
fn query_refuses_handle_types_it_cannot_back() {
    // Invalid on purpose (two bits, undefined bits), which validation would rightly report,
    // and D3D11 kinds, which have no backing on Linux.
    let inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let usage = vk::ImageUsageFlags::SAMPLED;
    for handle_type in [
        NvHandle::D3D11_IMAGE,
        NvHandle::D3D11_IMAGE_KMT,
        NvHandle::OPAQUE_WIN32 | NvHandle::OPAQUE_WIN32_KMT,
        NvHandle::from_raw(0x10),
        NvHandle::from_raw(0x8000_0000),
    ] {
        let got = nv_query(&inst, vk::Format::R8G8B8A8_UNORM, vk::ImageTiling::OPTIMAL, usage, handle_type);
        assert_eq!(got.err(), Some(vk::Result::ERROR_FORMAT_NOT_SUPPORTED), "{handle_type:?}");
    }
    // A null output pointer is refused, not dereferenced.
    let nv = ash::nv::external_memory_capabilities::Instance::new(&inst.entry, &inst.instance);
    // SAFETY: the layer must survive a null output.
    let r = unsafe {
        (nv.fp().get_physical_device_external_image_format_properties_nv)(
            inst.physical_device(),
            vk::Format::R8G8B8A8_UNORM,
            vk::ImageType::TYPE_2D,
            vk::ImageTiling::OPTIMAL,
            usage,
            vk::ImageCreateFlags::empty(),
            NvHandle::OPAQUE_WIN32,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, vk::Result::ERROR_VALIDATION_FAILED_EXT);
    inst.finish();
}

const EXTENT: vk::Extent3D = vk::Extent3D { width: 64, height: 32, depth: 1 };
const FORMAT: vk::Format = vk::Format::R8G8B8A8_UNORM;
const BYTES: usize = 64 * 32 * 4;

fn image_info<'a>() -> vk::ImageCreateInfo<'a> {
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

/// An image and memory made exportable the NV way, bound together.
struct Exportable {
    image: vk::Image,
    memory: vk::DeviceMemory,
    size: u64,
    memory_type: u32,
}

fn create_nv_image(dev: &TestDevice, handle_type: NvHandle) -> Exportable {
    let d = &dev.device;
    let mut nv_image = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(handle_type);
    // SAFETY: valid create infos on a live device.
    unsafe {
        let image =
            d.create_image(&image_info().push_next(&mut nv_image), None).expect("vkCreateImage with the NV struct");
        let req = d.get_image_memory_requirements(image);
        let memory_type = dev.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty());
        let mut nv_export = vk::ExportMemoryAllocateInfoNV::default().handle_types(handle_type);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(memory_type)
            .push_next(&mut nv_export);
        let memory = d.allocate_memory(&info, None).expect("vkAllocateMemory with the NV struct");
        d.bind_image_memory(image, memory, 0).expect("bind");
        Exportable { image, memory, size: req.size, memory_type }
    }
}

fn range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange::default().aspect_mask(vk::ImageAspectFlags::COLOR).level_count(1).layer_count(1)
}

fn layers() -> vk::ImageSubresourceLayers {
    vk::ImageSubresourceLayers::default().aspect_mask(vk::ImageAspectFlags::COLOR).layer_count(1)
}

fn copy_region() -> vk::BufferImageCopy {
    vk::BufferImageCopy::default().image_subresource(layers()).image_extent(EXTENT)
}

/// Writes `bytes` into `image`, which arrives in `from` (owned by `from_family`), and leaves it
/// in GENERAL released to the external queue family (the extension's issue 2).
fn upload(dev: &TestDevice, image: vk::Image, from: vk::ImageLayout, from_family: u32, bytes: &[u8]) {
    let mut staging = dev.host_buffer(BYTES as u64, vk::BufferUsageFlags::TRANSFER_SRC);
    staging.bytes().copy_from_slice(bytes);
    let d = &dev.device;
    dev.submit_once(|cb| unsafe {
        let acquire = vk::ImageMemoryBarrier::default()
            .src_queue_family_index(from_family)
            .dst_queue_family_index(if from_family == vk::QUEUE_FAMILY_IGNORED {
                from_family
            } else {
                dev.queue_family
            })
            .old_layout(from)
            .new_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .image(image)
            .subresource_range(range());
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[acquire],
        );
        d.cmd_copy_buffer_to_image(cb, staging.buffer, image, vk::ImageLayout::TRANSFER_DST_OPTIMAL, &[copy_region()]);
        let release = vk::ImageMemoryBarrier::default()
            .src_queue_family_index(dev.queue_family)
            .dst_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
            .old_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .new_layout(vk::ImageLayout::GENERAL)
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .image(image)
            .subresource_range(range());
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[release],
        );
    });
    dev.destroy_host_buffer(staging);
}

/// Acquires `image` from the external queue family in GENERAL and reads its bytes back; the
/// image stays in GENERAL, owned by this device's queue family.
fn download(dev: &TestDevice, image: vk::Image) -> Vec<u8> {
    let mut staging = dev.host_buffer(BYTES as u64, vk::BufferUsageFlags::TRANSFER_DST);
    let d = &dev.device;
    dev.submit_once(|cb| unsafe {
        let acquire = vk::ImageMemoryBarrier::default()
            .src_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
            .dst_queue_family_index(dev.queue_family)
            .old_layout(vk::ImageLayout::GENERAL)
            .new_layout(vk::ImageLayout::GENERAL)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
            .image(image)
            .subresource_range(range());
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[acquire],
        );
        d.cmd_copy_image_to_buffer(cb, image, vk::ImageLayout::GENERAL, staging.buffer, &[copy_region()]);
        let host = vk::BufferMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .buffer(staging.buffer)
            .size(vk::WHOLE_SIZE);
        d.cmd_pipeline_barrier(
            cb,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &[],
            &[host],
            &[],
        );
    });
    let out = staging.bytes().to_vec();
    dev.destroy_host_buffer(staging);
    out
}

#[test]
fn nv_image_is_shared_with_another_instance_through_an_opaque_fd() {
    // Exporting NV-exportable memory with vkGetMemoryFdKHR is this project's documented step
    // beyond the specification, so validation sits below the layer here.
    let producer_inst = TestInstance::new(&InstanceSpec::nv(Validation::BelowLayer));
    let producer = TestDevice::new(&producer_inst, &[NV_MEM]);
    let shared = create_nv_image(&producer, NvHandle::OPAQUE_WIN32);
    let first = pattern(BYTES, 1);
    upload(&producer, shared.image, vk::ImageLayout::UNDEFINED, vk::QUEUE_FAMILY_IGNORED, &first);

    let fd_ext = ash::khr::external_memory_fd::Device::new(&producer_inst.instance, &producer.device);
    let info = vk::MemoryGetFdInfoKHR::default()
        .memory(shared.memory)
        .handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
    // SAFETY: the memory was made exportable (NV struct, translated by the layer).
    let fd = unsafe { fd_ext.get_memory_fd(&info) }.expect("vkGetMemoryFdKHR on NV-exportable memory");
    // SAFETY: a successful export hands the application a new descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };

    // A second, independent instance without the layer imports it the KHR way.
    let consumer_inst = TestInstance::new(&InstanceSpec::plain(Validation::AboveLayer));
    let consumer = TestDevice::new(&consumer_inst, &[ash::khr::external_memory_fd::NAME]);
    let d = &consumer.device;
    let mut ext =
        vk::ExternalMemoryImageCreateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
    // SAFETY: valid create infos; the import takes the descriptor only on success.
    let (image, memory) = unsafe {
        let image = d.create_image(&image_info().push_next(&mut ext), None).unwrap();
        let raw = fd.into_raw_fd();
        let mut import =
            vk::ImportMemoryFdInfoKHR::default().handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD).fd(raw);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(shared.size)
            .memory_type_index(shared.memory_type)
            .push_next(&mut import);
        let memory = d.allocate_memory(&alloc, None).inspect_err(|_| drop(OwnedFd::from_raw_fd(raw))).expect("import");
        d.bind_image_memory(image, memory, 0).unwrap();
        (image, memory)
    };
    assert!(download(&consumer, image) == first, "the importer reads what the NV exporter wrote");

    // And back: the importer writes, the exporter sees it.
    let second = pattern(BYTES, 2);
    upload(&consumer, image, vk::ImageLayout::GENERAL, consumer.queue_family, &second);
    assert!(download(&producer, shared.image) == second, "the exporter reads what the importer wrote");

    // SAFETY: all work is finished.
    unsafe {
        d.destroy_image(image, None);
        d.free_memory(memory, None);
        producer.device.destroy_image(shared.image, None);
        producer.device.free_memory(shared.memory, None);
    }
    drop((consumer, producer));
    consumer_inst.finish();
    producer_inst.finish();
}

#[test]
fn nv_usage_is_valid_above_the_layer() {
    // Validation nearest the application checks its NV structures against the specification;
    // everything the application does here is NV only.
    let inst = TestInstance::new(&InstanceSpec::nv(Validation::AboveLayer));
    let dev = TestDevice::new(&inst, &[NV_MEM]);
    for handle_type in
        [NvHandle::OPAQUE_WIN32, NvHandle::OPAQUE_WIN32_KMT, NvHandle::OPAQUE_WIN32 | NvHandle::OPAQUE_WIN32_KMT]
    {
        let x = create_nv_image(&dev, handle_type);
        upload(&dev, x.image, vk::ImageLayout::UNDEFINED, vk::QUEUE_FAMILY_IGNORED, &pattern(BYTES, 3));
        assert!(download(&dev, x.image) == pattern(BYTES, 3));
        // SAFETY: work finished.
        unsafe {
            dev.device.destroy_image(x.image, None);
            dev.device.free_memory(x.memory, None);
        }
    }
    drop(dev);
    inst.finish();
}

#[test]
fn api_1_0_application_gets_the_khr_extensions_it_needs() {
    for validation in [Validation::AboveLayer, Validation::BelowLayer] {
        let spec = InstanceSpec { api_version: vk::API_VERSION_1_0, ..InstanceSpec::nv(validation) };
        let inst = TestInstance::new(&spec);
        let p = nv_query(
            &inst,
            FORMAT,
            vk::ImageTiling::OPTIMAL,
            vk::ImageUsageFlags::TRANSFER_DST,
            NvHandle::OPAQUE_WIN32,
        )
        .expect("the NV query on a 1.0 instance");
        assert!(p.external_memory_features.contains(vk::ExternalMemoryFeatureFlagsNV::EXPORTABLE));
        let dev = TestDevice::new(&inst, &[NV_MEM]);
        let x = create_nv_image(&dev, NvHandle::OPAQUE_WIN32);
        // SAFETY: no work pending.
        unsafe {
            dev.device.destroy_image(x.image, None);
            dev.device.free_memory(x.memory, None);
        }
        drop(dev);
        inst.finish();
    }
}

fn device_proc_addr(dev: &TestDevice, inst: &TestInstance, name: &CStr) -> vk::PFN_vkVoidFunction {
    // SAFETY: a live device; the loader answers with the first layer's pointer or the driver's.
    unsafe { (inst.instance.fp_v1_0().get_device_proc_addr)(dev.device.handle(), name.as_ptr()) }
}

#[test]
fn commands_the_layer_does_not_intercept_resolve_to_the_driver() {
    // No validation here: it would intercept every command itself.
    let plain_inst = TestInstance::new(&InstanceSpec::plain(Validation::Off));
    let plain = TestDevice::new(&plain_inst, &[]);
    let layered_inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let layered = TestDevice::new(&layered_inst, &[NV_MEM]);
    let untouched = TestDevice::new(&layered_inst, &[]);
    for name in [c"vkCmdDraw", c"vkQueueSubmit", c"vkCreateSampler", c"vkMapMemory", c"vkBindImageMemory"] {
        let want = device_proc_addr(&plain, &plain_inst, name).map(|f| f as usize);
        assert!(want.is_some(), "{name:?} exists");
        assert_eq!(
            device_proc_addr(&layered, &layered_inst, name).map(|f| f as usize),
            want,
            "{name:?} with the NV device"
        );
        assert_eq!(
            device_proc_addr(&untouched, &layered_inst, name).map(|f| f as usize),
            want,
            "{name:?} without NV enabled"
        );
    }
    // vkCreateImage is the layer's only where the application enabled the NV extension.
    let create_image = |d: &TestDevice, i: &TestInstance| device_proc_addr(d, i, c"vkCreateImage").map(|f| f as usize);
    assert_eq!(create_image(&untouched, &layered_inst), create_image(&plain, &plain_inst));
    assert_ne!(create_image(&layered, &layered_inst), create_image(&plain, &plain_inst));
}

#[test]
fn invalid_structures_get_errors_not_crashes() {
    // Each call breaks a valid-usage rule on purpose, so validation is off.
    let inst = TestInstance::new(&InstanceSpec::nv(Validation::Off));
    let dev = TestDevice::new(&inst, &[NV_MEM]);
    let d = &dev.device;
    let fails = vk::Result::ERROR_VALIDATION_FAILED_EXT;
    // SAFETY: every call below is refused by the layer before it reaches the driver.
    unsafe {
        // NV and core structures together (VUID-VkImageCreateInfo-pNext-00988).
        let mut nv = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(NvHandle::OPAQUE_WIN32);
        let mut core =
            vk::ExternalMemoryImageCreateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
        assert_eq!(d.create_image(&image_info().push_next(&mut nv).push_next(&mut core), None).err(), Some(fails));
        // Handle types with no backing here, and undefined bits.
        for bad in [NvHandle::D3D11_IMAGE, NvHandle::from_raw(0x40)] {
            let mut nv = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(bad);
            assert_eq!(d.create_image(&image_info().push_next(&mut nv), None).err(), Some(fails), "{bad:?}");
            let mut export = vk::ExportMemoryAllocateInfoNV::default().handle_types(bad);
            let info = vk::MemoryAllocateInfo::default().allocation_size(4096).push_next(&mut export);
            assert_eq!(d.allocate_memory(&info, None).err(), Some(fails), "{bad:?}");
        }
        // NV and core export structures together (VUID-VkMemoryAllocateInfo-pNext-00640).
        let mut nv = vk::ExportMemoryAllocateInfoNV::default().handle_types(NvHandle::OPAQUE_WIN32);
        let mut core =
            vk::ExportMemoryAllocateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD);
        let info = vk::MemoryAllocateInfo::default().allocation_size(4096).push_next(&mut nv).push_next(&mut core);
        assert_eq!(d.allocate_memory(&info, None).err(), Some(fails));
        // Null create info and output pointers.
        let create_image = device_proc_addr(&dev, &inst, c"vkCreateImage").unwrap();
        let create_image: vk::PFN_vkCreateImage = std::mem::transmute(create_image);
        assert_eq!(create_image(d.handle(), std::ptr::null(), std::ptr::null(), std::ptr::null_mut()), fails);
        // An NV structure with no handle types is dropped, and the image is an ordinary one.
        let mut none = vk::ExternalMemoryImageCreateInfoNV::default();
        let image = d.create_image(&image_info().push_next(&mut none), None).expect("empty NV handle types");
        d.destroy_image(image, None);
    }
    drop(dev);
    inst.finish();
}

#[test]
fn nv_structure_behind_other_structures_is_rewritten() {
    // The NV structure behind a format list and before a stencil usage: the layer copies the
    // nodes in front and keeps those behind; validation below sees only core structures.
    let inst = TestInstance::new(&InstanceSpec::nv(Validation::BelowLayer));
    let dev = TestDevice::new(&inst, &[NV_MEM]);
    let formats = [FORMAT];
    let mut list = vk::ImageFormatListCreateInfo::default().view_formats(&formats);
    let mut nv = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(NvHandle::OPAQUE_WIN32);
    // SAFETY: valid create infos.
    unsafe {
        let image = dev.device.create_image(&image_info().push_next(&mut nv).push_next(&mut list), None).unwrap();
        let req = dev.device.get_image_memory_requirements(image);
        let mut flags = vk::MemoryAllocateFlagsInfo::default();
        let mut export = vk::ExportMemoryAllocateInfoNV::default().handle_types(NvHandle::OPAQUE_WIN32);
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(dev.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()))
            .push_next(&mut export)
            .push_next(&mut flags);
        let memory = dev.device.allocate_memory(&info, None).unwrap();
        dev.device.bind_image_memory(image, memory, 0).unwrap();
        let fd_ext = ash::khr::external_memory_fd::Device::new(&inst.instance, &dev.device);
        let fd = fd_ext
            .get_memory_fd(
                &vk::MemoryGetFdInfoKHR::default()
                    .memory(memory)
                    .handle_type(vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD),
            )
            .expect("exportable");
        drop(OwnedFd::from_raw_fd(fd));
        dev.device.destroy_image(image, None);
        dev.device.free_memory(memory, None);
    }
    drop(dev);
    inst.finish();
}
