//! The resource part of a descriptor (an image's or a buffer's creation parameters), shared by
//! the `Share` and `PoolShare` messages.

use super::codec::{bad, Reader};
use crate::desc::{BufferDesc, ImageDesc, ResourceDesc};
use crate::error::Result;
use ash::vk;

const KIND_IMAGE: u8 = 1;
const KIND_BUFFER: u8 = 2;

/// The kind byte of a resource.
pub(super) fn resource_kind(resource: &ResourceDesc) -> u8 {
    match resource {
        ResourceDesc::Image(_) => KIND_IMAGE,
        ResourceDesc::Buffer(_) => KIND_BUFFER,
    }
}

/// The resource's own fields (after the kind byte and whatever the message puts between).
pub(super) fn encode_resource(resource: &ResourceDesc, out: &mut Vec<u8>) {
    match *resource {
        ResourceDesc::Image(i) => {
            out.extend_from_slice(&i.format.as_raw().to_le_bytes());
            for v in [i.extent.width, i.extent.height, i.extent.depth, i.mip_levels, i.array_layers] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&i.tiling.as_raw().to_le_bytes());
            out.extend_from_slice(&i.usage.as_raw().to_le_bytes());
        }
        ResourceDesc::Buffer(b) => {
            out.extend_from_slice(&b.size.to_le_bytes());
            out.extend_from_slice(&b.usage.as_raw().to_le_bytes());
        }
    }
}

/// Formats a descriptor may name: the core ones and the common extension ranges.
fn known_format(f: i32) -> bool {
    crate::gate::rules::known_format(vk::Format::from_raw(f))
}

/// The resource of kind `kind` (image 1, buffer 2), which must fit the `room` bytes from
/// `offset` on.
pub(super) fn decode_resource(r: &mut Reader<'_>, kind: u8, room: u64, offset: u64) -> Result<ResourceDesc> {
    Ok(match kind {
        KIND_IMAGE => {
            let format = r.i32("format")?;
            if !known_format(format) {
                return Err(bad(format!("format {format} is not a Vulkan format")));
            }
            let (w, h, d) = (r.u32("width")?, r.u32("height")?, r.u32("depth")?);
            let (mips, layers) = (r.u32("mip levels")?, r.u32("array layers")?);
            if [w, h, d].iter().any(|&v| v == 0 || v > 65_536) {
                return Err(bad(format!("extent {w}x{h}x{d} is outside 1..=65536")));
            }
            let max_mips = 32 - w.max(h).max(d).leading_zeros();
            if mips == 0 || mips > max_mips {
                return Err(bad(format!("{mips} mip levels for extent {w}x{h}x{d} (at most {max_mips})")));
            }
            if layers == 0 || layers > 4096 {
                return Err(bad(format!("{layers} array layers is outside 1..=4096")));
            }
            let tiling = vk::ImageTiling::from_raw(r.i32("tiling")?);
            if ![vk::ImageTiling::OPTIMAL, vk::ImageTiling::LINEAR, vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT]
                .contains(&tiling)
            {
                return Err(bad(format!("tiling {} is unknown", tiling.as_raw())));
            }
            let usage = r.u32("usage")?;
            if usage == 0 {
                return Err(bad("image usage is empty"));
            }
            ResourceDesc::Image(ImageDesc {
                format: vk::Format::from_raw(format),
                extent: vk::Extent3D { width: w, height: h, depth: d },
                mip_levels: mips,
                array_layers: layers,
                tiling,
                usage: vk::ImageUsageFlags::from_raw(usage),
            })
        }
        KIND_BUFFER => {
            let size = r.u64("buffer size")?;
            if size == 0 || size > room {
                return Err(bad(format!(
                    "buffer of {size} bytes at offset {offset} does not fit the {room} bytes there"
                )));
            }
            let usage = r.u32("usage")?;
            if usage == 0 {
                return Err(bad("buffer usage is empty"));
            }
            ResourceDesc::Buffer(BufferDesc { size, usage: vk::BufferUsageFlags::from_raw(usage) })
        }
        other => return Err(bad(format!("resource kind {other} is neither image (1) nor buffer (2)"))),
    })
}

/// A row pitch is only for a `LINEAR` image whose rows fit the `room` bytes.
pub(super) fn check_row_pitch(resource: &ResourceDesc, row_pitch: u64, room: u64) -> Result<()> {
    if row_pitch != 0 {
        let ResourceDesc::Image(i) = *resource else {
            return Err(bad("a row pitch for a buffer"));
        };
        let rows = i.extent.height as u64 * i.extent.depth as u64;
        if i.tiling != vk::ImageTiling::LINEAR
            || row_pitch < i.extent.width as u64
            || row_pitch.saturating_mul(rows) > room
        {
            return Err(bad(format!(
                "row pitch {row_pitch} does not fit a {:?} {}x{} image in {room} bytes",
                i.tiling, i.extent.width, i.extent.height
            )));
        }
    }
    Ok(())
}
