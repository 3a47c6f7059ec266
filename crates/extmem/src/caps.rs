//! What a physical device can share: per external handle type, whether images of a given
//! format / usage / tiling and buffers of a given usage can be exported, imported, or need a
//! dedicated allocation; external semaphore and fence handle types; device and driver UUIDs;
//! and, through the layer, the VK_NV_external_memory view.

use crate::desc::{BufferDesc, ImageDesc};
use crate::error::{Error, Result, VkResultExt};
use crate::handle::HandleType;
use crate::layer::LAYER_NAME;
use ash::vk;
use serde::Serialize;

/// What to ask about (one image kind and one buffer kind): `Query::default()` and the setters.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Query {
    /// The image kind.
    pub image: ImageDesc,
    /// The buffer kind.
    pub buffer: BufferDesc,
}

impl Default for Query {
    fn default() -> Self {
        let transfer = vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST;
        Query {
            image: ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 1920, 1080, transfer | vk::ImageUsageFlags::SAMPLED),
            buffer: BufferDesc {
                size: 1 << 20,
                usage: vk::BufferUsageFlags::TRANSFER_SRC
                    | vk::BufferUsageFlags::TRANSFER_DST
                    | vk::BufferUsageFlags::STORAGE_BUFFER,
            },
        }
    }
}

impl Query {
    /// Asks about images like `image`.
    pub fn image(mut self, image: ImageDesc) -> Self {
        self.image = image;
        self
    }
    /// Asks about buffers like `buffer`.
    pub fn buffer(mut self, buffer: BufferDesc) -> Self {
        self.buffer = buffer;
        self
    }
}

/// What one handle type allows for one kind of resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Features {
    /// Memory of this kind can be exported.
    pub exportable: bool,
    /// Memory of this kind can be imported.
    pub importable: bool,
    /// Only dedicated allocations can be exported or imported.
    pub dedicated_only: bool,
    /// Handle types that can be exported from the same memory.
    pub compatible: Vec<HandleType>,
}

impl Features {
    fn from_vk(p: vk::ExternalMemoryProperties) -> Option<Features> {
        let f = p.external_memory_features;
        let exportable = f.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE);
        let importable = f.contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE);
        (exportable || importable).then(|| Features {
            exportable,
            importable,
            dedicated_only: f.contains(vk::ExternalMemoryFeatureFlags::DEDICATED_ONLY),
            compatible: HandleType::all_in(p.compatible_handle_types),
        })
    }
}

/// One external memory handle type on one device.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryCaps {
    /// The handle type.
    pub handle_type: HandleType,
    /// The device offers the extension behind it.
    pub extension: bool,
    /// For the queried image kind; `None`: not supported.
    pub image: Option<Features>,
    /// For the queried buffer kind; `None`: not supported.
    pub buffer: Option<Features>,
}

/// An external semaphore or fence handle type.
#[derive(Clone, Debug, Serialize)]
pub struct SyncCaps {
    /// "opaque-fd" or "sync-fd".
    pub handle_type: &'static str,
    /// Can be exported.
    pub exportable: bool,
    /// Can be imported.
    pub importable: bool,
}

/// The VK_NV_external_memory view of one NV handle type (through the layer).
#[derive(Clone, Debug, Serialize)]
pub struct NvCaps {
    /// "opaque-win32", "opaque-win32-kmt", "d3d11-image", "d3d11-image-kmt".
    pub handle_type: &'static str,
    /// `None`: `VK_ERROR_FORMAT_NOT_SUPPORTED`.
    pub image: Option<NvFeatures>,
}

/// `VkExternalImageFormatPropertiesNV`, in words.
#[derive(Clone, Debug, Serialize)]
pub struct NvFeatures {
    /// EXPORTABLE.
    pub exportable: bool,
    /// IMPORTABLE.
    pub importable: bool,
    /// DEDICATED_ONLY.
    pub dedicated_only: bool,
    /// `compatibleHandleTypes`, raw NV bits.
    pub compatible_bits: u32,
}

/// Everything about one physical device.
#[derive(Clone, Debug, Serialize)]
pub struct Capabilities {
    /// Index in enumeration order (what `--device` takes).
    pub index: usize,
    /// Device name.
    pub name: String,
    /// Device type.
    pub device_type: String,
    /// Vulkan version the device supports.
    pub api_version: String,
    /// `deviceUUID`, hex.
    pub device_uuid: String,
    /// `driverUUID`, hex.
    pub driver_uuid: String,
    /// The image kind asked about.
    pub image_query: String,
    /// The buffer kind asked about.
    pub buffer_query: String,
    /// Per memory handle type.
    pub memory: Vec<MemoryCaps>,
    /// Binary semaphores.
    pub semaphores: Vec<SyncCaps>,
    /// Timeline semaphores.
    pub timeline_semaphores: Vec<SyncCaps>,
    /// Fences.
    pub fences: Vec<SyncCaps>,
    /// The NV view, when asked for through the layer.
    pub nv: Option<Vec<NvCaps>>,
    /// With the NV view: which of the queried kinds the layer marks external on this driver
    /// (only where marking leaves the memory requirements as they are).
    pub nv_marking: Option<NvMarking>,
    /// The queue families, by index.
    pub queues: Vec<QueueFamilyCaps>,
}

/// One queue family.
#[derive(Clone, Debug, Serialize)]
pub struct QueueFamilyCaps {
    /// Its index.
    pub index: u32,
    /// What it can do (`GRAPHICS | COMPUTE | TRANSFER ...`).
    pub flags: String,
    /// How many queues it has.
    pub count: u32,
    /// The [`crate::context::QueueKind`] that picks it, where one does.
    pub picked_by: Option<String>,
}

fn queue_caps(instance: &ash::Instance, pd: vk::PhysicalDevice) -> Vec<QueueFamilyCaps> {
    // SAFETY: a live physical device.
    let families = unsafe { instance.get_physical_device_queue_family_properties(pd) };
    let kinds =
        [crate::context::QueueKind::General, crate::context::QueueKind::Compute, crate::context::QueueKind::Transfer];
    let picked: Vec<(crate::context::QueueKind, Option<u32>)> =
        kinds.iter().map(|&k| (k, crate::context::pick_queue_family(&families, k))).collect();
    families
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let by: Vec<String> = picked
                .iter()
                .filter(|(_, p)| *p == Some(i as u32))
                .map(|(k, _)| format!("{k:?}").to_lowercase())
                .collect();
            QueueFamilyCaps {
                index: i as u32,
                flags: format!("{:?}", f.queue_flags),
                count: f.queue_count,
                picked_by: (!by.is_empty()).then(|| by.join(", ")),
            }
        })
        .collect()
}

/// Hex digits of a UUID.
pub fn hex(uuid: &[u8; 16]) -> String {
    uuid.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether and how `handle_type` works for images like `image` on `pd`.
pub fn image_features(
    instance: &ash::Instance,
    pd: vk::PhysicalDevice,
    image: &ImageDesc,
    handle_type: HandleType,
) -> Option<Features> {
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(handle_type.to_vk());
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(image.format)
        .ty(if image.extent.depth > 1 { vk::ImageType::TYPE_3D } else { vk::ImageType::TYPE_2D })
        .tiling(image.tiling)
        .usage(image.usage)
        .push_next(&mut ext_info);
    let mut ext = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext);
    // SAFETY: valid handles; chains built here.
    unsafe { instance.get_physical_device_image_format_properties2(pd, &info, &mut props) }.ok()?;
    let _ = props;
    Features::from_vk(ext.external_memory_properties)
}

/// Whether and how `handle_type` works for buffers like `buffer` on `pd`.
pub fn buffer_features(
    instance: &ash::Instance,
    pd: vk::PhysicalDevice,
    buffer: &BufferDesc,
    handle_type: HandleType,
) -> Option<Features> {
    let info = vk::PhysicalDeviceExternalBufferInfo::default().usage(buffer.usage).handle_type(handle_type.to_vk());
    let mut props = vk::ExternalBufferProperties::default();
    // SAFETY: valid handles.
    unsafe { instance.get_physical_device_external_buffer_properties(pd, &info, &mut props) };
    Features::from_vk(props.external_memory_properties)
}

fn sync_caps(instance: &ash::Instance, pd: vk::PhysicalDevice, timeline: bool) -> (Vec<SyncCaps>, Vec<SyncCaps>) {
    let kinds = [
        ("opaque-fd", vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD, vk::ExternalFenceHandleTypeFlags::OPAQUE_FD),
        ("sync-fd", vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD, vk::ExternalFenceHandleTypeFlags::SYNC_FD),
    ];
    let mut semaphores = Vec::new();
    let mut fences = Vec::new();
    for (name, s, f) in kinds {
        let mut ty = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
        let mut info = vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(s);
        if timeline {
            info = info.push_next(&mut ty);
        }
        let mut props = vk::ExternalSemaphoreProperties::default();
        // SAFETY: valid handles.
        unsafe { instance.get_physical_device_external_semaphore_properties(pd, &info, &mut props) };
        let e = props.external_semaphore_features;
        semaphores.push(SyncCaps {
            handle_type: name,
            exportable: e.contains(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE),
            importable: e.contains(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE),
        });
        let info = vk::PhysicalDeviceExternalFenceInfo::default().handle_type(f);
        let mut props = vk::ExternalFenceProperties::default();
        // SAFETY: valid handles.
        unsafe { instance.get_physical_device_external_fence_properties(pd, &info, &mut props) };
        let e = props.external_fence_features;
        fences.push(SyncCaps {
            handle_type: name,
            exportable: e.contains(vk::ExternalFenceFeatureFlags::EXPORTABLE),
            importable: e.contains(vk::ExternalFenceFeatureFlags::IMPORTABLE),
        });
    }
    (semaphores, fences)
}

fn nv_caps(
    nv: &ash::nv::external_memory_capabilities::Instance,
    pd: vk::PhysicalDevice,
    image: &ImageDesc,
) -> Vec<NvCaps> {
    use vk::ExternalMemoryHandleTypeFlagsNV as N;
    [
        (N::OPAQUE_WIN32, "opaque-win32"),
        (N::OPAQUE_WIN32_KMT, "opaque-win32-kmt"),
        (N::D3D11_IMAGE, "d3d11-image"),
        (N::D3D11_IMAGE_KMT, "d3d11-image-kmt"),
    ]
    .into_iter()
    .map(|(bit, name)| {
        let mut out = vk::ExternalImageFormatPropertiesNV::default();
        // SAFETY: valid arguments on an instance that enabled the NV extension.
        let r = unsafe {
            (nv.fp().get_physical_device_external_image_format_properties_nv)(
                pd,
                image.format,
                vk::ImageType::TYPE_2D,
                image.tiling,
                image.usage,
                vk::ImageCreateFlags::empty(),
                bit,
                &mut out,
            )
        };
        let f = out.external_memory_features;
        let image = (r == vk::Result::SUCCESS).then(|| NvFeatures {
            exportable: f.contains(vk::ExternalMemoryFeatureFlagsNV::EXPORTABLE),
            importable: f.contains(vk::ExternalMemoryFeatureFlagsNV::IMPORTABLE),
            dedicated_only: f.contains(vk::ExternalMemoryFeatureFlagsNV::DEDICATED_ONLY),
            compatible_bits: out.compatible_handle_types.as_raw(),
        });
        NvCaps { handle_type: name, image }
    })
    .collect()
}

/// Per kind of resource: "marked", or why not (what marking would change).
#[derive(Clone, Debug, Serialize)]
pub struct NvMarking {
    /// The queried buffer kind.
    pub buffers: String,
    /// The queried image kind, `LINEAR` and `OPTIMAL`.
    pub linear_images: String,
    /// As above, `OPTIMAL`.
    pub optimal_images: String,
}

/// Asks the driver, on a device of its own with VK_KHR_maintenance4, what marking the queried
/// kinds OPAQUE_FD changes (the layer's rule; NVIDIA's 580 driver drops a memory type from
/// buffers and `LINEAR` images). `None` where the device lacks the extension.
fn nv_marking(instance: &ash::Instance, pd: vk::PhysicalDevice, q: &Query, offered: bool) -> Option<NvMarking> {
    let names = [ash::khr::maintenance4::NAME.as_ptr()];
    let queue = [vk::DeviceQueueCreateInfo::default().queue_family_index(0).queue_priorities(&[1.0])];
    let info = vk::DeviceCreateInfo::default().queue_create_infos(&queue).enabled_extension_names(&names);
    // SAFETY: a valid create info; the device is destroyed below.
    let device = offered.then(|| unsafe { instance.create_device(pd, &info, None) }.ok()).flatten()?;
    let m4 = ash::khr::maintenance4::Device::new(instance, &device);
    let say = |plain: vk::MemoryRequirements, marked: vk::MemoryRequirements| match (plain, marked) {
        (p, m) if (p.size, p.alignment, p.memory_type_bits) == (m.size, m.alignment, m.memory_type_bits) => {
            "marked".into()
        }
        (p, m) => format!(
            "not marked: marking changes size {} -> {}, types {:#x} -> {:#x}",
            p.size, m.size, p.memory_type_bits, m.memory_type_bits
        ),
    };
    let fd = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;
    let buffer = |marked: bool| {
        let mut ext = vk::ExternalMemoryBufferCreateInfo::default().handle_types(fd);
        let mut ci = vk::BufferCreateInfo::default().size(q.buffer.size).usage(q.buffer.usage);
        if marked {
            ci = ci.push_next(&mut ext);
        }
        let mut out = vk::MemoryRequirements2::default();
        // SAFETY: a live device with the extension; valid structures.
        unsafe {
            m4.get_device_buffer_memory_requirements(
                &vk::DeviceBufferMemoryRequirements::default().create_info(&ci),
                &mut out,
            )
        };
        out.memory_requirements
    };
    let image = |tiling: vk::ImageTiling, marked: bool| {
        let mut ext = vk::ExternalMemoryImageCreateInfo::default().handle_types(fd);
        let e = q.image.extent;
        let mut ci = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(q.image.format)
            .extent(vk::Extent3D { width: e.width, height: e.height, depth: 1 })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(tiling)
            .usage(q.image.usage);
        if marked {
            ci = ci.push_next(&mut ext);
        }
        let mut out = vk::MemoryRequirements2::default();
        // SAFETY: as above.
        unsafe {
            m4.get_device_image_memory_requirements(
                &vk::DeviceImageMemoryRequirements::default().create_info(&ci),
                &mut out,
            )
        };
        out.memory_requirements
    };
    let answer = NvMarking {
        buffers: say(buffer(false), buffer(true)),
        linear_images: say(image(vk::ImageTiling::LINEAR, false), image(vk::ImageTiling::LINEAR, true)),
        optimal_images: say(image(vk::ImageTiling::OPTIMAL, false), image(vk::ImageTiling::OPTIMAL, true)),
    };
    // SAFETY: nothing was made from the device.
    unsafe { device.destroy_device(None) };
    Some(answer)
}

fn version(v: u32) -> String {
    format!("{}.{}.{}", vk::api_version_major(v), vk::api_version_minor(v), vk::api_version_patch(v))
}

/// The capabilities of one physical device. `nv` gives the NV view (the instance must have
/// enabled VK_NV_external_memory_capabilities).
pub fn query(
    instance: &ash::Instance,
    pd: vk::PhysicalDevice,
    index: usize,
    nv: Option<&ash::nv::external_memory_capabilities::Instance>,
    q: &Query,
) -> Result<Capabilities> {
    let mut ids = vk::PhysicalDeviceIDProperties::default();
    let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut ids);
    // SAFETY: valid handles.
    unsafe { instance.get_physical_device_properties2(pd, &mut props2) };
    let props = props2.properties;
    // SAFETY: valid handle.
    let extensions =
        unsafe { instance.enumerate_device_extension_properties(pd) }.vk("vkEnumerateDeviceExtensionProperties")?;
    let offered = |name: &std::ffi::CStr| extensions.iter().any(|e| e.extension_name_as_c_str() == Ok(name));
    let memory = HandleType::ALL
        .into_iter()
        .map(|h| MemoryCaps {
            handle_type: h,
            extension: offered(h.extension()),
            image: image_features(instance, pd, &q.image, h),
            buffer: buffer_features(instance, pd, &q.buffer, h),
        })
        .collect();
    let (semaphores, fences) = sync_caps(instance, pd, false);
    let (timeline_semaphores, _) = sync_caps(instance, pd, true);
    Ok(Capabilities {
        index,
        name: props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        device_type: format!("{:?}", props.device_type),
        api_version: version(props.api_version),
        device_uuid: hex(&ids.device_uuid),
        driver_uuid: hex(&ids.driver_uuid),
        image_query: format!(
            "{:?} {}x{} {:?} {:?}",
            q.image.format, q.image.extent.width, q.image.extent.height, q.image.tiling, q.image.usage
        ),
        buffer_query: format!("{:?}", q.buffer.usage),
        memory,
        semaphores,
        timeline_semaphores,
        fences,
        nv: nv.map(|nv| nv_caps(nv, pd, &q.image)),
        nv_marking: nv.and_then(|_| nv_marking(instance, pd, q, offered(ash::khr::maintenance4::NAME))),
        queues: queue_caps(instance, pd),
    })
}

/// The capabilities of every physical device, from an instance of its own; with `nv`, through
/// the extmem layer and with the NV view.
pub fn query_all(nv: bool, q: &Query) -> Result<Vec<Capabilities>> {
    // SAFETY: loads the system's Vulkan loader.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| Error::Loader(e.to_string()))?;
    let layers = if nv { vec![LAYER_NAME.as_ptr()] } else { vec![] };
    let extensions = if nv { vec![ash::nv::external_memory_capabilities::NAME.as_ptr()] } else { vec![] };
    let app = vk::ApplicationInfo::default().application_name(c"extmem caps").api_version(vk::API_VERSION_1_2);
    let info = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_layer_names(&layers)
        .enabled_extension_names(&extensions);
    // SAFETY: valid create info.
    let instance = unsafe { entry.create_instance(&info, None) }.map_err(|e| match (nv, e) {
        (true, vk::Result::ERROR_LAYER_NOT_PRESENT) => Error::Layer(
            "VK_LAYER_EXTMEM_external_memory is not visible to the loader (build it, set VK_ADD_LAYER_PATH)".into(),
        ),
        (_, result) => Error::Vulkan { call: "vkCreateInstance", result },
    })?;
    let nv_fns = nv.then(|| ash::nv::external_memory_capabilities::Instance::new(&entry, &instance));
    // SAFETY: live instance; destroyed below whatever happens.
    let result = unsafe { instance.enumerate_physical_devices() }
        .vk("vkEnumeratePhysicalDevices")
        .and_then(|pds| pds.iter().enumerate().map(|(i, &pd)| query(&instance, pd, i, nv_fns.as_ref(), q)).collect());
    // SAFETY: nothing else was made from the instance.
    unsafe { instance.destroy_instance(None) };
    result
}
