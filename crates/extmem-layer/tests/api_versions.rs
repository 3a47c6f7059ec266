//! NV-exportable memory bound to plain buffers and images for applications of every API
//! version. The layer marks resources external after comparing their memory requirements
//! marked and unmarked: with `vkGetDevice{Buffer,Image}MemoryRequirements` on 1.3, with
//! VK_KHR_maintenance4 enabled below the layer for 1.1 and 1.2 (the extension needs 1.1), with
//! a throw-away resource created below the layer for 1.0. Validation below the layer, which sees
//! the core calls, must stay silent for each (it reported VUID-vkBindImageMemory-memory-02728
//! twice and VUID-vkBindBufferMemory-memory-02726 once for 1.0-1.2 applications on lavapipe when
//! only 1.3 was marked). The layer's own enablements stay invisible: the device's extension
//! list is the driver's plus the NV names, and the commands of an extension the application
//! did not enable resolve as without the layer, except those of the extensions the layer
//! enabled for itself, which are NULL as the specification's `vkGetDeviceProcAddr` table says
//! (and as lavapipe answers without the layer).

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

const BUFFER_USAGES: [vk::BufferUsageFlags; 2] = [
    vk::BufferUsageFlags::from_raw(
        vk::BufferUsageFlags::TRANSFER_SRC.as_raw() | vk::BufferUsageFlags::TRANSFER_DST.as_raw(),
    ),
    vk::BufferUsageFlags::STORAGE_BUFFER,
];
const TILINGS: [vk::ImageTiling; 2] = [vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR];

fn buffer_info<'a>(usage: vk::BufferUsageFlags) -> vk::BufferCreateInfo<'a> {
    vk::BufferCreateInfo::default().size(4096).usage(usage)
}

/// How many buffer and image kinds of [`bind_plain_resources`] validation below the layer
/// reports on this driver: those whose requirements marking would change (none on lavapipe).
fn unmarked_binds() -> (usize, usize) {
    let buffers = BUFFER_USAGES.iter().filter(|&&u| common::marking_changes(Some(buffer_info(u)), None)).count();
    let images =
        TILINGS.iter().filter(|&&t| common::marking_changes(None, Some(common::image_info().tiling(t)))).count();
    (buffers, images)
}

fn bind_plain_resources(dev: &TestDevice) {
    let d = &dev.device;
    // SAFETY: valid create infos on a live device; everything is destroyed before returning.
    unsafe {
        for usage in BUFFER_USAGES {
            let buffer = d.create_buffer(&buffer_info(usage), None).unwrap();
            let memory = common::nv_memory(dev, d.get_buffer_memory_requirements(buffer), NV);
            d.bind_buffer_memory(buffer, memory, 0).expect("vkBindBufferMemory");
            d.destroy_buffer(buffer, None);
            d.free_memory(memory, None);
        }
        for tiling in TILINGS {
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
    let (buffers, images) = unmarked_binds();
    if buffers + images > 0 {
        eprintln!("this driver changes the requirements of {buffers} buffer and {images} image kinds when marked: those binds are reported below the layer");
    }
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
            let (reported, expected) =
                if validation == Validation::BelowLayer { (2 * (buffers + images), true) } else { (0, false) };
            let documented = |m: &String| {
                m.contains("VUID-vkBindBufferMemory-memory-02726") || m.contains("VUID-vkBindImageMemory-memory-02728")
            };
            assert!(
                messages.iter().all(|m| expected && documented(m)) && messages.len() == reported,
                "API {}.{}, validation {validation:?}: {} message(s), expected {reported} (02726 / 02728):\n{}",
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
    // Where the driver has VK_NV_dedicated_allocation (NVIDIA), the layer passes it through.
    let dedicated_native = common::driver_offers(NV_DED);
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
        // Commands of the extensions the layer enabled below itself (VK_KHR_maintenance4 for
        // 1.1 and 1.2, VK_KHR_get_memory_requirements2 for 1.0) are NULL, as the
        // specification's vkGetDeviceProcAddr table gives for an extension the application did
        // not enable; every other command resolves as without the layer.
        let layer_enabled = |n: &CStr| {
            let m4 = n.to_bytes().starts_with(b"vkGetDevice");
            if m4 {
                (vk::API_VERSION_1_1..vk::API_VERSION_1_3).contains(&api_version)
            } else {
                api_version < vk::API_VERSION_1_1 && !dedicated_native
            }
        };
        for name in LAYER_ENABLED {
            let without_layer = resolves(&without, &plain_without, name);
            let expected = if layer_enabled(name) { false } else { without_layer };
            assert_eq!(resolves(&inst, &dev, name), expected, "{v}: {name:?} through the layer");
            if layer_enabled(name) && without_layer {
                eprintln!("note: {v}: without the layer the driver resolves {name:?}, not enabled");
            }
        }
        for name in [c"vkGetDeviceBufferMemoryRequirements", c"vkGetDeviceImageMemoryRequirements"] {
            assert_eq!(resolves(&inst, &dev, name), resolves(&without, &plain_without, name), "{v}: {name:?}");
        }
        drop((dev, plain_without));
        drop((inst, without));
    }
}
