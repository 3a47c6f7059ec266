//! Memory allocated with `VkExportMemoryAllocateInfoNV` bound to resources the NV rules allow:
//! any buffer, and an image created without `VkExternalMemoryImageCreateInfoNV`
//! (VUID-vkBindBufferMemory-memory-02726 and VUID-vkBindImageMemory-memory-02728 speak only of
//! the core structures). The layer marks such resources OPAQUE_FD where that changes none of
//! their memory requirements, so that the validation layer *below* it, which sees the
//! translated core calls, finds the binds valid too; the cases it cannot mark (a
//! `PREINITIALIZED` image; on NVIDIA's driver, buffers and LINEAR images, whose marked
//! requirements lose a memory type) are shown to be reported.

use ash::vk;
use extmem_testkit::{InstanceSpec, TestDevice, TestInstance, Validation};

const NV_MEM: &std::ffi::CStr = ash::nv::external_memory::NAME;
const NV: vk::ExternalMemoryHandleTypeFlagsNV = vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32;

fn nv_memory(dev: &TestDevice, req: vk::MemoryRequirements) -> vk::DeviceMemory {
    let mut export = vk::ExportMemoryAllocateInfoNV::default().handle_types(NV);
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(dev.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()))
        .push_next(&mut export);
    // SAFETY: a valid allocate info on a live device.
    unsafe { dev.device.allocate_memory(&info, None) }.expect("vkAllocateMemory with the NV structure")
}

fn image_info<'a>(tiling: vk::ImageTiling, layout: vk::ImageLayout) -> vk::ImageCreateInfo<'a> {
    vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .extent(vk::Extent3D { width: 64, height: 32, depth: 1 })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(tiling)
        .usage(vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST)
        .initial_layout(layout)
}

fn bind_image(dev: &TestDevice, info: &vk::ImageCreateInfo) {
    let d = &dev.device;
    // SAFETY: valid create infos; everything is destroyed before returning.
    unsafe {
        let image = d.create_image(info, None).expect("vkCreateImage");
        let memory = nv_memory(dev, d.get_image_memory_requirements(image));
        d.bind_image_memory(image, memory, 0).expect("vkBindImageMemory");
        d.destroy_image(image, None);
        d.free_memory(memory, None);
    }
}

/// Whether the driver itself (asked on a device without the NV extension, where the layer
/// changes nothing) gives different memory requirements to `marked` and `plain` resources.
fn driver_changes(
    plain: &TestDevice,
    buffer: Option<vk::BufferCreateInfo>,
    image: Option<vk::ImageCreateInfo>,
) -> bool {
    let d = &plain.device;
    let key = |r: &vk::MemoryRequirements2| {
        let m = r.memory_requirements;
        (m.size, m.alignment, m.memory_type_bits)
    };
    let ask = |marked: bool| {
        let mut out = vk::MemoryRequirements2::default();
        // SAFETY: valid create infos on a live device.
        unsafe {
            if let Some(mut b) = buffer {
                let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(MARKED);
                if marked {
                    b = b.push_next(&mut ext);
                }
                d.get_device_buffer_memory_requirements(
                    &vk::DeviceBufferMemoryRequirements::default().create_info(&b),
                    &mut out,
                );
            } else if let Some(mut i) = image {
                let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(MARKED);
                if marked {
                    i = i.push_next(&mut ext);
                }
                d.get_device_image_memory_requirements(
                    &vk::DeviceImageMemoryRequirements::default().create_info(&i),
                    &mut out,
                );
            }
        }
        key(&out)
    };
    ask(false) != ask(true)
}

const MARKED: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;

/// Runs `bind` and checks what validation said of it: nothing, or (where the layer could not
/// mark the resource because marking would change its requirements, and validation sits below
/// the layer) only `vuid`.
fn expect_bind(inst: &TestInstance, reported: bool, vuid: &str, what: &str, bind: impl FnOnce()) {
    let before = inst.messages().len();
    bind();
    let new = inst.messages().split_off(before);
    if reported {
        assert!(!new.is_empty(), "{what}: expected {vuid} below the layer, validation stayed silent");
        assert!(new.iter().all(|m| m.contains(vuid)), "{what}: expected only {vuid}, got:\n{}", new.join("\n"));
    } else {
        assert!(new.is_empty(), "{what}: {} validation message(s):\n{}", new.len(), new.join("\n"));
    }
}

#[test]
fn nv_memory_binds_to_plain_buffers_and_images_with_validation_on_either_side() {
    for validation in [Validation::BelowLayer, Validation::AboveLayer] {
        let inst = TestInstance::new(&InstanceSpec::nv(validation));
        let dev = TestDevice::new(&inst, &[NV_MEM]);
        let plain = TestDevice::new(&inst, &[]);
        let below = validation == Validation::BelowLayer;
        let d = &dev.device;
        use vk::BufferUsageFlags as B;
        for (size, usage) in
            [(4096, B::TRANSFER_SRC | B::TRANSFER_DST), (1 << 20, B::STORAGE_BUFFER), (100, B::UNIFORM_BUFFER)]
        {
            let info = vk::BufferCreateInfo::default().size(size).usage(usage);
            let reported = below && driver_changes(&plain, Some(info), None);
            expect_bind(&inst, reported, "VUID-vkBindBufferMemory-memory-02726", &format!("buffer {usage:?}"), || {
                // SAFETY: valid create infos; destroyed at once.
                unsafe {
                    let buffer = d.create_buffer(&info, None).unwrap();
                    let memory = nv_memory(&dev, d.get_buffer_memory_requirements(buffer));
                    d.bind_buffer_memory(buffer, memory, 0).expect("vkBindBufferMemory");
                    d.destroy_buffer(buffer, None);
                    d.free_memory(memory, None);
                }
            });
        }
        for tiling in [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR] {
            let info = image_info(tiling, vk::ImageLayout::UNDEFINED);
            let reported = below && driver_changes(&plain, None, Some(info));
            let vuid = "VUID-vkBindImageMemory-memory-02728";
            expect_bind(&inst, reported, vuid, &format!("{tiling:?} image"), || bind_image(&dev, &info));
            // An NV structure without handle types asks for an ordinary image.
            let mut none = vk::ExternalMemoryImageCreateInfoNV::default();
            expect_bind(&inst, reported, vuid, &format!("{tiling:?} image, empty NV structure"), || {
                bind_image(&dev, &image_info(tiling, vk::ImageLayout::UNDEFINED).push_next(&mut none))
            });
        }
        if below {
            // The layer answers these itself (the driver's pointers would skip the marking).
            for name in [c"vkGetDeviceBufferMemoryRequirements", c"vkGetDeviceImageMemoryRequirements"] {
                let proc_addr = |dev: &TestDevice| {
                    // SAFETY: a live device and a valid name.
                    unsafe { (inst.instance.fp_v1_0().get_device_proc_addr)(dev.device.handle(), name.as_ptr()) }
                        .map(|f| f as usize)
                };
                assert!(proc_addr(&plain).is_some());
                assert_ne!(proc_addr(&dev), proc_addr(&plain), "{name:?} is not the layer's on an NV device");
            }
        }
        drop((dev, plain));
        drop(inst);
    }
}

#[test]
fn marking_leaves_memory_requirements_unchanged() {
    let inst = TestInstance::new(&InstanceSpec::nv(Validation::BelowLayer));
    let nv_dev = TestDevice::new(&inst, &[NV_MEM]);
    let plain_dev = TestDevice::new(&inst, &[]);
    let reqs = |dev: &TestDevice| {
        let d = &dev.device;
        // SAFETY: valid create infos; destroyed at once.
        unsafe {
            let buffer = d
                .create_buffer(
                    &vk::BufferCreateInfo::default().size(65_537).usage(vk::BufferUsageFlags::STORAGE_BUFFER),
                    None,
                )
                .unwrap();
            let image =
                d.create_image(&image_info(vk::ImageTiling::OPTIMAL, vk::ImageLayout::UNDEFINED), None).unwrap();
            let (b, i) = (d.get_buffer_memory_requirements(buffer), d.get_image_memory_requirements(image));
            d.destroy_buffer(buffer, None);
            d.destroy_image(image, None);
            [(b.size, b.alignment, b.memory_type_bits), (i.size, i.alignment, i.memory_type_bits)]
        }
    };
    assert_eq!(reqs(&nv_dev), reqs(&plain_dev));
    drop((nv_dev, plain_dev));
    inst.finish();
}

#[test]
fn preinitialized_image_is_not_marked_and_its_nv_bind_is_reported_below() {
    // A PREINITIALIZED image cannot be external (VUID-VkImageCreateInfo-pNext-01443), so the
    // layer leaves it alone; binding NV-exportable memory to it is valid NV usage but invalid
    // core usage, which validation below the layer reports: the one case marking cannot cover.
    let inst = TestInstance::new(&InstanceSpec::nv(Validation::BelowLayer));
    let dev = TestDevice::new(&inst, &[NV_MEM]);
    bind_image(&dev, &image_info(vk::ImageTiling::LINEAR, vk::ImageLayout::PREINITIALIZED));
    let messages = inst.messages();
    drop(dev);
    drop(inst);
    assert!(!messages.is_empty(), "validation below the layer stayed silent");
    assert!(
        messages.iter().all(|m| m.contains("VUID-vkBindImageMemory-memory-02728")),
        "expected only VUID-vkBindImageMemory-memory-02728, got:\n{}",
        messages.join("\n")
    );
}

#[test]
fn requirements_asked_from_create_infos_match_the_created_resources() {
    // vkGetDevice{Buffer,Image}MemoryRequirements (1.3) must answer for the resource as the
    // layer creates it: marked, or with the NV structure translated (validation below would
    // report an NV structure it does not expect in a core call).
    for validation in [Validation::BelowLayer, Validation::AboveLayer] {
        let inst = TestInstance::new(&InstanceSpec::nv(validation));
        let dev = TestDevice::new(&inst, &[NV_MEM]);
        let d = &dev.device;
        let key = |r: vk::MemoryRequirements| (r.size, r.alignment, r.memory_type_bits);
        let info = vk::BufferCreateInfo::default().size(65_537).usage(vk::BufferUsageFlags::STORAGE_BUFFER);
        // SAFETY: valid create infos; destroyed at once.
        unsafe {
            let mut asked = vk::MemoryRequirements2::default();
            d.get_device_buffer_memory_requirements(
                &vk::DeviceBufferMemoryRequirements::default().create_info(&info),
                &mut asked,
            );
            let buffer = d.create_buffer(&info, None).unwrap();
            assert_eq!(key(asked.memory_requirements), key(d.get_buffer_memory_requirements(buffer)));
            d.destroy_buffer(buffer, None);
        }
        for handle_types in [None, Some(NV)] {
            let mut nv = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(handle_types.unwrap_or_default());
            let mut info = image_info(vk::ImageTiling::OPTIMAL, vk::ImageLayout::UNDEFINED);
            if handle_types.is_some() {
                info = info.push_next(&mut nv);
            }
            // SAFETY: as above.
            unsafe {
                let mut asked = vk::MemoryRequirements2::default();
                d.get_device_image_memory_requirements(
                    &vk::DeviceImageMemoryRequirements::default().create_info(&info),
                    &mut asked,
                );
                let image = d.create_image(&info, None).unwrap();
                assert_eq!(key(asked.memory_requirements), key(d.get_image_memory_requirements(image)));
                d.destroy_image(image, None);
            }
        }
        if validation == Validation::BelowLayer {
            // The layer answers these itself (the driver's pointers would skip the marking).
            let plain = TestDevice::new(&inst, &[]);
            for name in [c"vkGetDeviceBufferMemoryRequirements", c"vkGetDeviceImageMemoryRequirements"] {
                let proc_addr = |dev: &TestDevice| {
                    // SAFETY: a live device and a valid name.
                    unsafe { (inst.instance.fp_v1_0().get_device_proc_addr)(dev.device.handle(), name.as_ptr()) }
                        .map(|f| f as usize)
                };
                assert!(proc_addr(&plain).is_some());
                assert_ne!(proc_addr(&dev), proc_addr(&plain), "{name:?} is not the layer's on an NV device");
            }
            drop(plain);
        }
        drop(dev);
        inst.finish();
    }
}
