//! The `VkBufferCreateInfo` / `VkImageCreateInfo` valid-usage rules that the fields of a
//! [`crate::BufferDesc`] or [`crate::ImageDesc`] can reach, and the device's limits, checked
//! before any Vulkan call: on creation (a safe function must not be able to crash the driver)
//! and on import (a peer's descriptor may decode and still break them).
//!
//! The checks are pure functions of the description and a plain capture of the device's
//! limits ([`DeviceLimits`], [`FormatLimits`]), so that they are fuzzed without a device.

use crate::desc::{Descriptor, ImageDesc, ResourceDesc};
use ash::vk;

/// The device limits the rules need, captured once from the physical device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceLimits {
    /// `VkPhysicalDeviceLimits::maxImageDimension2D`.
    pub max_image_dimension_2d: u32,
    /// `VkPhysicalDeviceLimits::maxImageDimension3D`.
    pub max_image_dimension_3d: u32,
    /// `VkPhysicalDeviceLimits::maxImageArrayLayers`.
    pub max_image_array_layers: u32,
    /// `VkPhysicalDeviceLimits::maxFramebufferWidth`.
    pub max_framebuffer_width: u32,
    /// `VkPhysicalDeviceLimits::maxFramebufferHeight`.
    pub max_framebuffer_height: u32,
    /// `VkPhysicalDeviceMaintenance3Properties::maxMemoryAllocationSize`.
    pub max_memory_allocation_size: u64,
}

/// `vkGetPhysicalDeviceImageFormatProperties2`'s answer for one image description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatLimits {
    /// `maxExtent`.
    pub max_extent: vk::Extent3D,
    /// `maxMipLevels`.
    pub max_mip_levels: u32,
    /// `maxArrayLayers`.
    pub max_array_layers: u32,
}

/// A broken rule: the field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The description's field, as the wire format and the structures name it.
    pub field: &'static str,
    /// What is wrong with it.
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

fn broken<T>(field: &'static str, why: String) -> Result<T, Broken> {
    Err(Broken { field, why })
}

/// Image usage bits of Vulkan 1.0 (the ones a context can use without enabling more).
pub const KNOWN_IMAGE_USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::from_raw(0xff);
/// Buffer usage bits of Vulkan 1.0 (device addresses need a feature no context enables).
pub const KNOWN_BUFFER_USAGE: vk::BufferUsageFlags = vk::BufferUsageFlags::from_raw(0x1ff);

/// Whether `f` is a format of Vulkan 1.3 or of the extensions with formats (not `UNDEFINED`).
pub fn known_format(f: vk::Format) -> bool {
    matches!(f.as_raw(), 1..=184 | 1_000_156_000..=1_000_156_033 | 1_000_054_000..=1_000_054_007
        | 1_000_066_000..=1_000_066_013 | 1_000_330_000..=1_000_330_003 | 1_000_340_000..=1_000_340_001)
}

/// The image type extmem creates for `image`: 3D when it has depth, else 2D.
pub fn image_type(image: &ImageDesc) -> vk::ImageType {
    if image.extent.depth > 1 {
        vk::ImageType::TYPE_3D
    } else {
        vk::ImageType::TYPE_2D
    }
}

/// The rules that need no format query (run first: the format query itself has rules).
pub fn check_shape(desc: &ResourceDesc, device: &DeviceLimits) -> Result<(), Broken> {
    match desc {
        ResourceDesc::Buffer(b) => {
            if b.size == 0 {
                return broken("size", "a buffer of 0 bytes (VUID-VkBufferCreateInfo-size-00912)".into());
            }
            if b.size > device.max_memory_allocation_size {
                return broken(
                    "size",
                    format!(
                        "{} bytes exceed the device's maxMemoryAllocationSize of {}",
                        b.size, device.max_memory_allocation_size
                    ),
                );
            }
            if b.usage.is_empty() || !KNOWN_BUFFER_USAGE.contains(b.usage) {
                return broken("usage", format!("buffer usage {:#x} is empty or has undefined bits", b.usage.as_raw()));
            }
        }
        ResourceDesc::Image(i) => check_image_shape(i, device)?,
    }
    Ok(())
}

fn check_image_shape(i: &ImageDesc, device: &DeviceLimits) -> Result<(), Broken> {
    let vk::Extent3D { width: w, height: h, depth: d } = i.extent;
    if !known_format(i.format) {
        return broken("format", format!("{} is not a Vulkan format", i.format.as_raw()));
    }
    if w == 0 || h == 0 || d == 0 {
        return broken("extent", format!("{w}x{h}x{d} has a zero side (VUID-VkImageCreateInfo-extent-00944)"));
    }
    let three_d = image_type(i) == vk::ImageType::TYPE_3D;
    let max = if three_d { device.max_image_dimension_3d } else { device.max_image_dimension_2d };
    if w > max || h > max || (three_d && d > max) {
        let which = if three_d { "maxImageDimension3D" } else { "maxImageDimension2D" };
        return broken("extent", format!("{w}x{h}x{d} exceeds the device's {which} of {max}"));
    }
    let max_mips = 32 - w.max(h).max(d).leading_zeros();
    if i.mip_levels == 0 || i.mip_levels > max_mips {
        return broken(
            "mip_levels",
            format!("{} for {w}x{h}x{d}: 1..={max_mips} (VUID-VkImageCreateInfo-mipLevels-00947/00958)", i.mip_levels),
        );
    }
    if i.array_layers == 0 || i.array_layers > device.max_image_array_layers {
        return broken(
            "array_layers",
            format!("{}: 1..={} (maxImageArrayLayers)", i.array_layers, device.max_image_array_layers),
        );
    }
    if three_d && i.array_layers != 1 {
        return broken(
            "array_layers",
            format!("{} for a 3D image, which has exactly 1 (VUID-VkImageCreateInfo-imageType-00961)", i.array_layers),
        );
    }
    match i.tiling {
        vk::ImageTiling::OPTIMAL | vk::ImageTiling::LINEAR => {}
        vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT => {
            return broken(
                "tiling",
                "DRM_FORMAT_MODIFIER_EXT needs a modifier chain, which a description does not carry \
                 (VUID-VkImageCreateInfo-tiling-02261); use OPTIMAL or LINEAR"
                    .into(),
            )
        }
        t => return broken("tiling", format!("{} is not a tiling", t.as_raw())),
    }
    if i.usage.is_empty() || !KNOWN_IMAGE_USAGE.contains(i.usage) {
        return broken("usage", format!("image usage {:#x} is empty or has undefined bits", i.usage.as_raw()));
    }
    let attachments = vk::ImageUsageFlags::COLOR_ATTACHMENT
        | vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT
        | vk::ImageUsageFlags::INPUT_ATTACHMENT
        | vk::ImageUsageFlags::TRANSIENT_ATTACHMENT;
    let transient = vk::ImageUsageFlags::TRANSIENT_ATTACHMENT;
    if i.usage.contains(transient) && !attachments.contains(i.usage) {
        return broken(
            "usage",
            "TRANSIENT_ATTACHMENT goes with attachment bits only (VUID-VkImageCreateInfo-usage-00963)".into(),
        );
    }
    if i.usage.contains(transient) && !i.usage.intersects(attachments & !transient) {
        return broken(
            "usage",
            "TRANSIENT_ATTACHMENT needs a color, depth/stencil or input attachment bit (VUID-VkImageCreateInfo-usage-00966)"
                .into(),
        );
    }
    if i.usage.intersects(attachments) && (w > device.max_framebuffer_width || h > device.max_framebuffer_height) {
        return broken(
            "extent",
            format!(
                "{w}x{h} attachment exceeds the device's framebuffer limit {}x{} (VUID-VkImageCreateInfo-usage-00964/00965)",
                device.max_framebuffer_width, device.max_framebuffer_height
            ),
        );
    }
    Ok(())
}

/// The rules against the format's limits (`None`: the device cannot make such an image).
pub fn check_format(i: &ImageDesc, format: Option<&FormatLimits>) -> Result<(), Broken> {
    let Some(f) = format else {
        return broken(
            "format",
            format!("{:?} {:?} images of usage {:?} are not supported by this device", i.format, i.tiling, i.usage),
        );
    };
    let (e, m) = (i.extent, f.max_extent);
    if e.width > m.width || e.height > m.height || e.depth > m.depth {
        return broken(
            "extent",
            format!(
                "{}x{}x{} exceeds {}x{}x{} for this format (VUID-VkImageCreateInfo-extent-02252)",
                e.width, e.height, e.depth, m.width, m.height, m.depth
            ),
        );
    }
    if i.mip_levels > f.max_mip_levels {
        return broken("mip_levels", format!("{} exceeds {} for this format", i.mip_levels, f.max_mip_levels));
    }
    if i.array_layers > f.max_array_layers {
        return broken("array_layers", format!("{} exceeds {} for this format", i.array_layers, f.max_array_layers));
    }
    Ok(())
}

/// Every rule for a resource: the shape, then the format's limits for images.
pub fn check(desc: &ResourceDesc, device: &DeviceLimits, format: Option<&FormatLimits>) -> Result<(), Broken> {
    check_shape(desc, device)?;
    match desc {
        ResourceDesc::Image(i) => check_format(i, format),
        ResourceDesc::Buffer(_) => Ok(()),
    }
}

/// The rules for an imported descriptor that need no format query: its resource's shape, and
/// an allocation the device can make (the memory type is checked against the resource's
/// requirements by the import itself).
pub fn check_descriptor_shape(desc: &Descriptor, device: &DeviceLimits) -> Result<(), Broken> {
    if desc.allocation_size == 0 || desc.allocation_size > device.max_memory_allocation_size {
        return broken(
            "allocation_size",
            format!(
                "{} bytes: 1..={} (maxMemoryAllocationSize)",
                desc.allocation_size, device.max_memory_allocation_size
            ),
        );
    }
    if desc.offset >= desc.allocation_size {
        return broken("offset", format!("{} is past the {}-byte allocation", desc.offset, desc.allocation_size));
    }
    check_shape(&desc.resource, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::BufferDesc;
    use crate::handle::HandleType;

    const DEVICE: DeviceLimits = DeviceLimits {
        max_image_dimension_2d: 16384,
        max_image_dimension_3d: 2048,
        max_image_array_layers: 2048,
        max_framebuffer_width: 8192,
        max_framebuffer_height: 8192,
        max_memory_allocation_size: 1 << 31,
    };

    fn image() -> ImageDesc {
        ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 64, 64, vk::ImageUsageFlags::TRANSFER_SRC)
    }

    fn field(desc: ResourceDesc) -> &'static str {
        check_shape(&desc, &DEVICE).expect_err("refused").field
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let img = |f: fn(&mut ImageDesc)| {
            let mut i = image();
            f(&mut i);
            ResourceDesc::Image(i)
        };
        assert!(check_shape(&ResourceDesc::Image(image()), &DEVICE).is_ok());
        assert_eq!(field(img(|i| i.extent.width = 0)), "extent");
        assert_eq!(field(img(|i| i.extent.height = 16385)), "extent");
        assert_eq!(field(img(|i| i.extent.depth = 2049)), "extent");
        assert_eq!(field(img(|i| i.mip_levels = 8)), "mip_levels");
        assert_eq!(field(img(|i| i.array_layers = 0)), "array_layers");
        assert_eq!(
            field(img(|i| {
                i.extent.depth = 4;
                i.array_layers = 2
            })),
            "array_layers"
        );
        assert_eq!(field(img(|i| i.tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)), "tiling");
        assert_eq!(field(img(|i| i.usage = vk::ImageUsageFlags::from_raw(0x100))), "usage");
        assert_eq!(
            field(img(|i| i.usage = vk::ImageUsageFlags::TRANSIENT_ATTACHMENT | vk::ImageUsageFlags::SAMPLED)),
            "usage"
        );
        assert_eq!(field(img(|i| i.format = vk::Format::UNDEFINED)), "format");
        assert_eq!(field(img(|i| i.usage = vk::ImageUsageFlags::TRANSIENT_ATTACHMENT)), "usage");
        const COLOR: vk::ImageUsageFlags = vk::ImageUsageFlags::COLOR_ATTACHMENT;
        assert_eq!(
            field(img(|i| {
                i.usage = COLOR;
                i.extent.width = 8193
            })),
            "extent"
        );
        assert!(check_shape(&img(|i| i.usage = COLOR | vk::ImageUsageFlags::TRANSIENT_ATTACHMENT), &DEVICE).is_ok());
        let usage = vk::BufferUsageFlags::TRANSFER_SRC;
        assert_eq!(field(ResourceDesc::Buffer(BufferDesc { size: 0, usage })), "size");
        assert_eq!(field(ResourceDesc::Buffer(BufferDesc { size: 1 << 32, usage })), "size");
        let bda = vk::BufferUsageFlags::SHADER_DEVICE_ADDRESS;
        assert_eq!(field(ResourceDesc::Buffer(BufferDesc { size: 16, usage: bda })), "usage");
    }

    #[test]
    fn format_limits_bound_the_image() {
        let f = FormatLimits {
            max_extent: vk::Extent3D { width: 32, height: 64, depth: 1 },
            max_mip_levels: 3,
            max_array_layers: 4,
        };
        assert_eq!(check_format(&image(), Some(&f)).unwrap_err().field, "extent");
        let small = ImageDesc { extent: vk::Extent3D { width: 32, height: 32, depth: 1 }, ..image() };
        assert!(check_format(&small, Some(&f)).is_ok());
        assert_eq!(check_format(&ImageDesc { mip_levels: 4, ..small }, Some(&f)).unwrap_err().field, "mip_levels");
        assert_eq!(check_format(&ImageDesc { array_layers: 5, ..small }, Some(&f)).unwrap_err().field, "array_layers");
        assert_eq!(check_format(&small, None).unwrap_err().field, "format");
    }

    #[test]
    fn a_descriptor_needs_a_possible_allocation() {
        let desc = Descriptor {
            resource: ResourceDesc::Image(image()),
            handle_type: HandleType::OpaqueFd,
            allocation_size: 1 << 20,
            memory_type_index: 1,
            memory_type_bits: 2,
            dedicated: true,
            offset: 0,
            layout: vk::ImageLayout::GENERAL,
            device_uuid: [0; 16],
            driver_uuid: [0; 16],
            row_pitch: 0,
        };
        assert!(check_descriptor_shape(&desc, &DEVICE).is_ok());
        let f = |d: Descriptor| check_descriptor_shape(&d, &DEVICE).unwrap_err().field;
        assert_eq!(f(Descriptor { allocation_size: 0, ..desc }), "allocation_size");
        assert_eq!(f(Descriptor { allocation_size: 1 << 40, ..desc }), "allocation_size");
        assert_eq!(f(Descriptor { offset: 1 << 20, ..desc }), "offset");
    }
}
