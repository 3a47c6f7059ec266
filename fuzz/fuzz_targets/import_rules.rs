//! The import checks (`extmem::rules`) as a pure function of a descriptor and a device's
//! captured limits: never a panic, and whatever they accept keeps every rule they stand for.
//!
//! Input: 36 bytes of limits, then a wire message; a `Share` message's descriptor is checked
//! as an import would, and the same bytes are also read as raw resource fields (reaching what
//! the decoder refuses).
#![no_main]

use ash::vk;
use extmem::rules::{self, DeviceLimits, FormatLimits};
use extmem::transport::Message;
use extmem::{BufferDesc, ImageDesc, ResourceDesc};
use libfuzzer_sys::fuzz_target;

fn u32_at(d: &[u8], i: usize) -> u32 {
    d.get(i..i + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()))
}

fn u64_at(d: &[u8], i: usize) -> u64 {
    d.get(i..i + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

fn limits(d: &[u8]) -> (DeviceLimits, Option<FormatLimits>) {
    let device = DeviceLimits {
        max_image_dimension_2d: u32_at(d, 0),
        max_image_dimension_3d: u32_at(d, 4),
        max_image_array_layers: u32_at(d, 8),
        max_framebuffer_width: u32_at(d, 0) >> 1,
        max_framebuffer_height: u32_at(d, 4) >> 1,
        max_memory_allocation_size: u64_at(d, 12),
    };
    let format = (u32_at(d, 24) & 1 == 1).then(|| FormatLimits {
        max_extent: vk::Extent3D { width: u32_at(d, 24) >> 1, height: u32_at(d, 28), depth: u32_at(d, 32) & 0xffff },
        max_mip_levels: u32_at(d, 32) >> 16,
        max_array_layers: u32_at(d, 28) >> 8,
    });
    (device, format)
}

/// What an accepted resource must satisfy.
fn assert_kept(desc: &ResourceDesc, device: &DeviceLimits, format: Option<&FormatLimits>) {
    match desc {
        ResourceDesc::Buffer(b) => {
            assert!(b.size > 0 && b.size <= device.max_memory_allocation_size, "{b:?}");
            assert!(!b.usage.is_empty() && rules::KNOWN_BUFFER_USAGE.contains(b.usage), "{b:?}");
        }
        ResourceDesc::Image(i) => {
            let f = format.expect("an image accepted without format limits");
            let e = i.extent;
            assert!(e.width > 0 && e.height > 0 && e.depth > 0, "{i:?}");
            assert!(e.width <= f.max_extent.width && e.height <= f.max_extent.height, "{i:?}");
            assert!(e.depth <= f.max_extent.depth, "{i:?}");
            assert!(i.mip_levels >= 1 && i.mip_levels <= f.max_mip_levels, "{i:?}");
            assert!(i.mip_levels <= 32 - e.width.max(e.height).max(e.depth).leading_zeros(), "{i:?}");
            assert!(i.array_layers >= 1 && i.array_layers <= device.max_image_array_layers, "{i:?}");
            assert!(e.depth == 1 || i.array_layers == 1, "{i:?}");
            assert!(matches!(i.tiling, vk::ImageTiling::OPTIMAL | vk::ImageTiling::LINEAR), "{i:?}");
            assert!(rules::known_format(i.format) && rules::KNOWN_IMAGE_USAGE.contains(i.usage), "{i:?}");
            let attachments = vk::ImageUsageFlags::from_raw(0xf0);
            if i.usage.intersects(attachments) {
                assert!(e.width <= device.max_framebuffer_width && e.height <= device.max_framebuffer_height, "{i:?}");
            }
            if i.usage.contains(vk::ImageUsageFlags::TRANSIENT_ATTACHMENT) {
                assert!(
                    attachments.contains(i.usage) && i.usage.intersects(vk::ImageUsageFlags::from_raw(0xb0)),
                    "{i:?}"
                );
            }
        }
        // A kind this target does not build.
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 36 {
        return;
    }
    let (head, rest) = data.split_at(36);
    let (device, format) = limits(head);
    if let Ok(Message::Share(desc)) = Message::decode(rest) {
        if rules::check_descriptor_shape(&desc, &device).is_ok() {
            assert!(desc.allocation_size > 0 && desc.allocation_size <= device.max_memory_allocation_size);
            assert!(desc.offset < desc.allocation_size);
            if rules::check(&desc.resource, &device, format.as_ref()).is_ok() {
                assert_kept(&desc.resource, &device, format.as_ref());
            }
        }
    }
    // The same bytes as raw fields.
    let raw = if rest.first().is_some_and(|b| b & 1 == 0) {
        ResourceDesc::Buffer(BufferDesc {
            size: u64_at(rest, 1),
            usage: vk::BufferUsageFlags::from_raw(u32_at(rest, 9)),
        })
    } else {
        ResourceDesc::Image(ImageDesc {
            format: vk::Format::from_raw(u32_at(rest, 1) as i32),
            extent: vk::Extent3D { width: u32_at(rest, 5), height: u32_at(rest, 9), depth: u32_at(rest, 13) },
            mip_levels: u32_at(rest, 17),
            array_layers: u32_at(rest, 21),
            tiling: vk::ImageTiling::from_raw(u32_at(rest, 25) as i32),
            usage: vk::ImageUsageFlags::from_raw(u32_at(rest, 29)),
        })
    };
    if let Err(broken) = rules::check(&raw, &device, format.as_ref()) {
        assert!(!broken.why.is_empty());
    } else {
        assert_kept(&raw, &device, format.as_ref());
    }
});
