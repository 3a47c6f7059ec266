//! NV-exportable memory bound to plain buffers and images for applications of every API
//! version. The layer marks resources external after comparing their memory requirements
//! marked and unmarked: with `vkGetDevice{Buffer,Image}MemoryRequirements` on 1.3, with
//! VK_KHR_maintenance4 enabled below the layer for 1.1 and 1.2 (the extension needs 1.1), with
//! a throw-away resource created below the layer for 1.0. Validation below the layer, which sees
//! the core calls, must stay silent for each (it reported VUID-vkBindImageMemory-memory-02728
//! twice and VUID-vkBindBufferMemory-memory-02726 once for 1.0-1.2 applications on lavapipe when
//! only 1.3 was marked). The layer's own enablements stay invisible: the device's extension
//! list is the driver's plus the NV names, and the commands of an extension the application
//! did not enable resolve as they do without the layer.

mod common;

use ash::vk;
use extmem_testkit::{InstanceSpec, TestDevice, TestInstance, Validation};
use std::ffi::CStr;

const NV_MEM: &CStr = ash::nv::external_memory::NAME;
const NV_DED: &CStr = ash::nv::dedicated_allocation::NAME;
const NV: vk::ExternalMemoryHandleTypeFlagsNV = vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32;
const VERSIONS: [u32; 4] = [vk::API_VERSION_1_0, vk::API_VERSION_1_1, vk::API_VERSION_1_2, vk::API_VERSION_1_3];

fn spec(api_version: u32, validation: Validation) -> InstanceSpec {
    InstanceSpec { api_version, ..InstanceSpec::nv(validation) }
}

fn bind_plain_resources(dev: &TestDevice) {
    let d = &dev.device;
    // SAFETY: valid create infos on a live device; everything is destroyed before returning.
    unsafe {
        for usage in [
            vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST,
            vk::BufferUsageFlags::STORAGE_BUFFER,
        ] {
            let buffer = d.create_buffer(&vk::BufferCreateInfo::default().size(4096).usage(usage), None).unwrap();
            let memory = common::nv_memory(dev, d.get_buffer_memory_requirements(buffer), NV);
            d.bind_buffer_memory(buffer, memory, 0).expect("vkBindBufferMemory");
            d.destroy_buffer(buffer, None);
            d.free_memory(memory, None);
        }
        for tiling in [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR] {
            let image = d.create_image(&common::image_info().tiling(tiling), None).unwrap();
            let memory = common::nv_memory(dev, d.get_image_memory_requirements(image), NV);
            d.bind_image_memory(image, memory, 0).expect("vkBindImageMemory");
            d.destroy_image(image, None);
            d.free_memory(memory, None);
        }
    }
}

#[test]
fn nv_memory_binds_to_plain_resources_for_every_api_version_with_validation_below() {
    for api_version in VERSIONS {
        for validation in [Validation::BelowLayer, Validation::AboveLayer] {
            let inst = TestInstance::new(&spec(api_version, validation));
            let dev = TestDevice::new(&inst, &[NV_MEM]);
            bind_plain_resources(&dev);
            // Twice: the second pass takes the cached answers.
            bind_plain_resources(&dev);
            drop(dev);
            let messages = inst.messages();
            drop(inst);
            assert!(
                messages.is_empty(),
                "API {}.{}, validation {validation:?}: {} message(s):\n{}",
                vk::api_version_major(api_version),
                vk::api_version_minor(api_version),
                messages.len(),
                messages.join("\n")
            );
        }
    }
}

fn extension_names(inst: &TestInstance) -> Vec<String> {
    // SAFETY: a live physical device.
    let list = unsafe { inst.instance.enumerate_device_extension_properties(inst.physical_device()) }.unwrap();
    let mut names: Vec<String> =
        list.iter().map(|e| e.extension_name_as_c_str().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn resolves(inst: &TestInstance, dev: &TestDevice, name: &CStr) -> bool {
    // SAFETY: a live device and a valid name.
    unsafe { (inst.instance.fp_v1_0().get_device_proc_addr)(dev.device.handle(), name.as_ptr()) }.is_some()
}

/// Commands of the extensions the layer may enable below itself.
const LAYER_ENABLED: [&CStr; 6] = [
    c"vkGetDeviceBufferMemoryRequirementsKHR",
    c"vkGetDeviceImageMemoryRequirementsKHR",
    c"vkGetDeviceImageSparseMemoryRequirementsKHR",
    c"vkGetBufferMemoryRequirements2KHR",
    c"vkGetImageMemoryRequirements2KHR",
    c"vkGetImageSparseMemoryRequirements2KHR",
];

#[test]
fn the_layers_own_enablements_stay_invisible() {
    for api_version in VERSIONS {
        let without =
            TestInstance::new(&InstanceSpec { layer: false, extensions: vec![], ..spec(api_version, Validation::Off) });
        let plain_without = TestDevice::new(&without, &[]);
        let inst = TestInstance::new(&spec(api_version, Validation::Off));
        let dev = TestDevice::new(&inst, &[NV_MEM, NV_DED]);
        let v = format!("API {}.{}", vk::api_version_major(api_version), vk::api_version_minor(api_version));
        // The list is the driver's plus the NV names the layer implements, nothing else.
        let mut expected = extension_names(&without);
        expected.extend([NV_DED, NV_MEM].map(|n| n.to_string_lossy().into_owned()));
        expected.sort();
        expected.dedup();
        assert_eq!(extension_names(&inst), expected, "{v}");
        for name in LAYER_ENABLED {
            assert_eq!(
                resolves(&inst, &dev, name),
                resolves(&without, &plain_without, name),
                "{v}: {name:?} resolves differently through the layer"
            );
        }
        // Core 1.3 names follow the application's version, as without the layer.
        for name in [c"vkGetDeviceBufferMemoryRequirements", c"vkGetDeviceImageMemoryRequirements"] {
            assert_eq!(resolves(&inst, &dev, name), resolves(&without, &plain_without, name), "{v}: {name:?}");
        }
        drop((dev, plain_without));
        drop((inst, without));
    }
}
