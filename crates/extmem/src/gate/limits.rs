//! The device's side of [`crate::gate::rules`]: its limits and format answers, captured from a
//! context, and the checks run before creating or importing a resource.

use crate::context::Context;
use crate::desc::{Descriptor, ImageDesc, ResourceDesc};
use crate::error::{Error, Result};
use crate::gate::rules::{self, DeviceLimits, FormatLimits};
use crate::handle::HandleType;
use ash::vk;

/// The limits of the context's device that the rules need.
pub fn device_limits(ctx: &Context) -> DeviceLimits {
    let mut m3 = vk::PhysicalDeviceMaintenance3Properties::default();
    let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut m3);
    // SAFETY: a live physical device of Vulkan 1.1 (the context requires it).
    unsafe { ctx.instance().get_physical_device_properties2(ctx.physical_device(), &mut props) };
    let l = props.properties.limits;
    DeviceLimits {
        max_image_dimension_2d: l.max_image_dimension2_d,
        max_image_dimension_3d: l.max_image_dimension3_d,
        max_image_array_layers: l.max_image_array_layers,
        max_framebuffer_width: l.max_framebuffer_width,
        max_framebuffer_height: l.max_framebuffer_height,
        max_memory_allocation_size: m3.max_memory_allocation_size,
    }
}

/// What the device can make of images like `image`, external as `h`; `None` where it cannot.
/// Only for descriptions that passed [`rules::check_shape`] (the query has rules too).
pub fn format_limits(ctx: &Context, image: &ImageDesc, h: HandleType) -> Option<FormatLimits> {
    let mut external = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(h.to_vk());
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(image.format)
        .ty(rules::image_type(image))
        .tiling(image.tiling)
        .usage(image.usage)
        .push_next(&mut external);
    // Drivers write the external answer when the query names a handle type (lavapipe without
    // checking that the structure is there).
    let mut external_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external_props);
    // SAFETY: a live physical device; a valid query (the shape rules passed).
    unsafe { ctx.instance().get_physical_device_image_format_properties2(ctx.physical_device(), &info, &mut props) }
        .ok()?;
    let p = props.image_format_properties;
    Some(FormatLimits {
        max_extent: p.max_extent,
        max_mip_levels: p.max_mip_levels,
        max_array_layers: p.max_array_layers,
    })
}

pub(crate) fn check_resource(
    ctx: &Context,
    desc: &ResourceDesc,
    h: HandleType,
) -> std::result::Result<(), rules::Broken> {
    let device = device_limits(ctx);
    rules::check_shape(desc, &device)?;
    match desc {
        // Host memory backs buffers only; the caller says so.
        ResourceDesc::Image(_) if h == HandleType::HostAllocation => Ok(()),
        // Where the device cannot make such an image at all, the caller's capability check
        // says so in its own words (`extmem caps`).
        ResourceDesc::Image(i) => match format_limits(ctx, i, h) {
            Some(f) => rules::check_format(i, Some(&f)),
            None => Ok(()),
        },
        ResourceDesc::Buffer(_) => Ok(()),
    }
}

/// Refuses a description a safe creation function must not pass to the driver.
pub(crate) fn check_create(ctx: &Context, desc: &ResourceDesc, h: HandleType) -> Result<()> {
    check_resource(ctx, desc, h).map_err(|b| Error::Invalid(b.to_string()))
}

/// Refuses a peer's descriptor that breaks the rules, naming the field.
pub(crate) fn check_import(ctx: &Context, desc: &Descriptor) -> Result<()> {
    rules::check_descriptor_shape(desc, &device_limits(ctx)).map_err(|b| Error::Import(format!("descriptor {b}")))?;
    check_resource(ctx, &desc.resource, desc.handle_type).map_err(|b| Error::Import(format!("descriptor {b}")))
}
