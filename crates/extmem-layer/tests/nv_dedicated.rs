//! VK_NV_dedicated_allocation as the layer offers it where the driver lacks it (lavapipe):
//! the valid usage of `VkDedicatedAllocationMemoryAllocateInfoNV` (VUIDs 00649-00653) and the
//! bind rules for dedicated NV resources (VUID-vkBindImageMemory-image-01050,
//! VUID-vkBindBufferMemory-buffer-01038, -apiVersion-07921 / -07920) refused before the driver
//! with `VK_ERROR_VALIDATION_FAILED_EXT`; a sweep of valid use, alone and with NV export, with
//! validation above and below the layer; the core dedicated-requirement answers unchanged.

mod common;

use ash::vk;
use extmem_testkit::{InstanceSpec, TestDevice, TestInstance, Validation};
use std::ffi::CStr;

const NV_MEM: &CStr = ash::nv::external_memory::NAME;
const NV_DED: &CStr = ash::nv::dedicated_allocation::NAME;
const NV: vk::ExternalMemoryHandleTypeFlagsNV = vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32;
const FAILED: vk::Result = vk::Result::ERROR_VALIDATION_FAILED_EXT;

fn instance(api_version: u32, validation: Validation) -> TestInstance {
    TestInstance::new(&InstanceSpec { api_version, ..InstanceSpec::nv(validation) })
}

/// An image created with `VkDedicatedAllocationImageCreateInfoNV { dedicated }` (none: without
/// the structure), and optionally `VkExternalMemoryImageCreateInfoNV`.
fn image(dev: &TestDevice, info: vk::ImageCreateInfo, dedicated: Option<bool>, export: bool) -> vk::Image {
    let mut ded = vk::DedicatedAllocationImageCreateInfoNV::default().dedicated_allocation(dedicated == Some(true));
    let mut ext = vk::ExternalMemoryImageCreateInfoNV::default().handle_types(NV);
    let mut info = info;
    if dedicated.is_some() {
        info = info.push_next(&mut ded);
    }
    if export {
        info = info.push_next(&mut ext);
    }
    // SAFETY: a valid create info on a live device.
    unsafe { dev.device.create_image(&info, None) }.expect("vkCreateImage")
}

fn buffer(dev: &TestDevice, size: u64, usage: vk::BufferUsageFlags, dedicated: Option<bool>) -> vk::Buffer {
    let mut ded = vk::DedicatedAllocationBufferCreateInfoNV::default().dedicated_allocation(dedicated == Some(true));
    let mut info = vk::BufferCreateInfo::default().size(size).usage(usage);
    if dedicated.is_some() {
        info = info.push_next(&mut ded);
    }
    // SAFETY: a valid create info on a live device.
    unsafe { dev.device.create_buffer(&info, None) }.expect("vkCreateBuffer")
}

/// `vkAllocateMemory` of `size` bytes of a type among `bits`, with the NV dedicated structure
/// naming `image` / `buffer` and, with `export`, `VkExportMemoryAllocateInfoNV`.
fn allocate(
    dev: &TestDevice,
    size: u64,
    bits: u32,
    image: vk::Image,
    buffer: vk::Buffer,
    export: bool,
) -> Result<vk::DeviceMemory, vk::Result> {
    let mut ded = vk::DedicatedAllocationMemoryAllocateInfoNV::default().image(image).buffer(buffer);
    let mut exp = vk::ExportMemoryAllocateInfoNV::default().handle_types(NV);
    let mut info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(dev.memory_type(bits, vk::MemoryPropertyFlags::empty()))
        .push_next(&mut ded);
    if export {
        info = info.push_next(&mut exp);
    }
    // SAFETY: a valid allocate info (or one the layer refuses) on a live device.
    unsafe { dev.device.allocate_memory(&info, None) }
}

fn plain_memory(dev: &TestDevice, req: vk::MemoryRequirements) -> vk::DeviceMemory {
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(dev.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()));
    // SAFETY: a valid allocate info.
    unsafe { dev.device.allocate_memory(&info, None) }.expect("vkAllocateMemory")
}

/// Where the driver has the extension itself (NVIDIA), the layer passes it through and these
/// tests of the layer's own implementation print a SKIPPED line.
fn skipped_where_native(test: &str) -> bool {
    let native = common::driver_offers(NV_DED);
    if native {
        eprintln!("SKIPPED {test}: the driver has VK_NV_dedicated_allocation (the layer passes it through)");
    }
    native
}

#[test]
fn the_device_offers_the_extension_and_the_rules_are_refused_before_the_driver() {
    if skipped_where_native("refusals") {
        return;
    }
    for api_version in [vk::API_VERSION_1_0, vk::API_VERSION_1_3] {
        // Validation below the layer: it must see nothing, since nothing invalid goes down.
        let inst = instance(api_version, Validation::BelowLayer);
        // SAFETY: a live physical device.
        let list = unsafe { inst.instance.enumerate_device_extension_properties(inst.physical_device()) }.unwrap();
        assert!(list.iter().any(|e| e.extension_name_as_c_str() == Ok(NV_DED)), "the layer offers it");
        let dev = TestDevice::new(&inst, &[NV_DED]);
        let d = &dev.device;
        let info = common::image_info();
        let usage = vk::BufferUsageFlags::TRANSFER_SRC;
        // SAFETY: live objects; each is destroyed before the device.
        unsafe {
            let ded_image = image(&dev, info, Some(true), false);
            let not_ded = image(&dev, info, Some(false), false);
            let plain = image(&dev, info, None, false);
            let ded_buffer = buffer(&dev, 4096, usage, Some(true));
            let plain_buffer = buffer(&dev, 4096, usage, None);
            let ireq = d.get_image_memory_requirements(ded_image);
            let breq = d.get_buffer_memory_requirements(ded_buffer);
            let (isize, ibits, bsize, bbits) = (ireq.size, ireq.memory_type_bits, breq.size, breq.memory_type_bits);
            // 00649: not both.
            assert_eq!(allocate(&dev, isize, ibits, ded_image, ded_buffer, false), Err(FAILED), "00649");
            // 00650: the image was not created dedicated (structure FALSE, or none).
            assert_eq!(allocate(&dev, isize, ibits, not_ded, vk::Buffer::null(), false), Err(FAILED), "00650");
            assert_eq!(allocate(&dev, isize, ibits, plain, vk::Buffer::null(), false), Err(FAILED), "00650");
            // 00651: the buffer was not.
            assert_eq!(allocate(&dev, bsize, bbits, vk::Image::null(), plain_buffer, false), Err(FAILED), "00651");
            // 00652 / 00653: the size must be the resource's.
            assert_eq!(allocate(&dev, isize + 4096, ibits, ded_image, vk::Buffer::null(), false), Err(FAILED), "00652");
            assert_eq!(allocate(&dev, bsize * 2, bbits, vk::Image::null(), ded_buffer, false), Err(FAILED), "00653");

            // 01050: a dedicated image goes to memory dedicated to it, at offset 0.
            let other = plain_memory(&dev, ireq);
            assert_eq!(d.bind_image_memory(ded_image, other, 0), Err(FAILED), "01050, plain memory");
            let mem = allocate(&dev, isize, ibits, ded_image, vk::Buffer::null(), false).expect("valid");
            // 07921: memory dedicated to one image binds no other.
            assert_eq!(d.bind_image_memory(plain, mem, 0), Err(FAILED), "07921");
            d.bind_image_memory(ded_image, mem, 0).expect("the valid bind");
            // 01038 / 07920 for buffers.
            let bother = plain_memory(&dev, breq);
            assert_eq!(d.bind_buffer_memory(ded_buffer, bother, 0), Err(FAILED), "01038");
            let bmem = allocate(&dev, bsize, bbits, vk::Image::null(), ded_buffer, false).expect("valid");
            assert_eq!(d.bind_buffer_memory(plain_buffer, bmem, 0), Err(FAILED), "07920");
            assert_eq!(d.bind_image_memory(not_ded, bmem, 0), Err(FAILED), "buffer memory to an image");
            d.bind_buffer_memory(ded_buffer, bmem, 0).expect("the valid bind");
            // Ordinary resources and memory are not the extension's business.
            d.bind_image_memory(plain, other, 0).expect("plain bind");
            d.bind_buffer_memory(plain_buffer, bother, 0).expect("plain bind");

            for i in [ded_image, not_ded, plain] {
                d.destroy_image(i, None);
            }
            for b in [ded_buffer, plain_buffer] {
                d.destroy_buffer(b, None);
            }
            for m in [other, mem, bother, bmem] {
                d.free_memory(m, None);
            }
            // A destroyed handle is forgotten: a handle the driver hands out again is new.
            let again = image(&dev, info, None, false);
            let again_mem = plain_memory(&dev, d.get_image_memory_requirements(again));
            d.bind_image_memory(again, again_mem, 0).expect("a reused handle is not dedicated");
            d.destroy_image(again, None);
            d.free_memory(again_mem, None);
        }
        drop(dev);
        inst.finish();
    }
}

#[test]
fn sweep_of_valid_dedicated_resources_with_and_without_nv_export() {
    use vk::ImageUsageFlags as U;
    let formats = [
        vk::Format::R8G8B8A8_UNORM,
        vk::Format::B8G8R8A8_SRGB,
        vk::Format::R16G16B16A16_SFLOAT,
        vk::Format::R32_SFLOAT,
        vk::Format::D32_SFLOAT,
    ];
    let usages = [
        U::TRANSFER_SRC | U::TRANSFER_DST,
        U::SAMPLED,
        U::COLOR_ATTACHMENT | U::SAMPLED,
        U::DEPTH_STENCIL_ATTACHMENT,
        U::STORAGE,
    ];
    let buffer_usages = [
        vk::BufferUsageFlags::TRANSFER_DST,
        vk::BufferUsageFlags::STORAGE_BUFFER,
        vk::BufferUsageFlags::UNIFORM_BUFFER | vk::BufferUsageFlags::VERTEX_BUFFER,
    ];
    // A buffer carries no NV export structure: NV-exportable memory bound to it is marked
    // external only where marking changes no requirement (not on NVIDIA's driver, where
    // validation below reports the documented 02726 for those binds).
    let unmarked: Vec<bool> = buffer_usages
        .iter()
        .map(|&u| common::marking_changes(Some(vk::BufferCreateInfo::default().size(65_536).usage(u)), None))
        .collect();
    for api_version in [vk::API_VERSION_1_0, vk::API_VERSION_1_3] {
        for validation in [Validation::BelowLayer, Validation::AboveLayer] {
            let inst = instance(api_version, validation);
            let dev = TestDevice::new(&inst, &[NV_MEM, NV_DED]);
            let mut documented = 0;
            let d = &dev.device;
            let mut images = 0;
            for format in formats {
                for tiling in [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR] {
                    for usage in usages {
                        for export in [false, true] {
                            // SAFETY: a live physical device.
                            let supported = unsafe {
                                inst.instance.get_physical_device_image_format_properties(
                                    inst.physical_device(),
                                    format,
                                    vk::ImageType::TYPE_2D,
                                    tiling,
                                    usage,
                                    vk::ImageCreateFlags::empty(),
                                )
                            }
                            .is_ok();
                            if !supported {
                                continue;
                            }
                            let info = common::image_info().format(format).tiling(tiling).usage(usage);
                            // SAFETY: valid objects; destroyed at once.
                            unsafe {
                                let i = image(&dev, info, Some(true), export);
                                let req = d.get_image_memory_requirements(i);
                                let m = allocate(&dev, req.size, req.memory_type_bits, i, vk::Buffer::null(), export)
                                    .unwrap_or_else(|e| panic!("{format:?} {tiling:?} {usage:?} export {export}: {e}"));
                                d.bind_image_memory(i, m, 0).expect("bind");
                                d.destroy_image(i, None);
                                d.free_memory(m, None);
                            }
                            images += 1;
                        }
                    }
                }
            }
            assert!(images >= 40, "only {images} image combinations ran");
            for (usage, &unmarked) in buffer_usages.iter().copied().zip(&unmarked) {
                for export in [false, true] {
                    documented += usize::from(export && unmarked && validation == Validation::BelowLayer);
                    // SAFETY: valid objects; destroyed at once.
                    unsafe {
                        let b = buffer(&dev, 65_536, usage, Some(true));
                        let req = d.get_buffer_memory_requirements(b);
                        let m = allocate(&dev, req.size, req.memory_type_bits, vk::Image::null(), b, export)
                            .expect("valid");
                        d.bind_buffer_memory(b, m, 0).expect("bind");
                        d.destroy_buffer(b, None);
                        d.free_memory(m, None);
                    }
                }
            }
            if documented > 0 {
                let messages = inst.messages();
                let expected = messages.iter().filter(|m| m.contains("VUID-vkBindBufferMemory-memory-02726")).count();
                assert_eq!(expected, documented, "02726 once per unmarked buffer:\n{}", messages.join("\n"));
                assert_eq!(messages.len(), documented, "only 02726:\n{}", messages.join("\n"));
                drop(dev);
                drop(inst);
                continue;
            }
            drop(dev);
            inst.finish();
        }
    }
}

#[test]
fn core_dedicated_requirements_are_the_drivers() {
    if skipped_where_native("core requirements") {
        return;
    }
    // The NV structure leaves the chain: VkMemoryDedicatedRequirements answers for the image as
    // the driver sees it, the same as for an image created without the layer's help.
    let inst = instance(vk::API_VERSION_1_3, Validation::BelowLayer);
    let nv_dev = TestDevice::new(&inst, &[NV_DED]);
    let plain_dev = TestDevice::new(&inst, &[]);
    let ask = |dev: &TestDevice, dedicated: Option<bool>| {
        let i = image(dev, common::image_info(), dedicated, false);
        let mut ded = vk::MemoryDedicatedRequirements::default();
        let mut out = vk::MemoryRequirements2::default().push_next(&mut ded);
        // SAFETY: a live image.
        unsafe {
            dev.device.get_image_memory_requirements2(&vk::ImageMemoryRequirementsInfo2::default().image(i), &mut out);
            dev.device.destroy_image(i, None);
        }
        let r = out.memory_requirements;
        (r.size, r.alignment, r.memory_type_bits, ded.prefers_dedicated_allocation, ded.requires_dedicated_allocation)
    };
    assert_eq!(ask(&nv_dev, Some(true)), ask(&plain_dev, None));
    assert_eq!(ask(&nv_dev, Some(false)), ask(&plain_dev, None));
    drop((nv_dev, plain_dev));
    inst.finish();
}
