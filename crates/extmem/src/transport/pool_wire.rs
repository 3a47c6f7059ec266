//! The pool messages' bodies (`PoolBlock`, `PoolShare`, `PoolHeld`, `PoolRelease`), decoded as
//! strictly as the rest of the wire format: every field named, every value checked.

use super::codec::{bad, Reader, MAX_ALLOCATION};
use super::resource_wire::{check_row_pitch, decode_resource, encode_resource, resource_kind};
use crate::error::Result;
use crate::handle::HandleType;
use crate::pool_desc::{BlockDesc, PoolHandle, PooledDesc};
use ash::vk;

pub(super) fn encode_block(b: &BlockDesc, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.block.to_le_bytes());
    out.extend_from_slice(&b.size.to_le_bytes());
    out.extend_from_slice(&b.handle_type.to_vk().as_raw().to_le_bytes());
    out.extend_from_slice(&b.memory_type_index.to_le_bytes());
    out.extend_from_slice(&b.device_uuid);
    out.extend_from_slice(&b.driver_uuid);
}

pub(super) fn decode_block(r: &mut Reader<'_>) -> Result<BlockDesc> {
    let block = r.u32("block")?;
    let size = r.u64("block size")?;
    if size == 0 || size > MAX_ALLOCATION {
        return Err(bad(format!("block size {size} is outside 1..={MAX_ALLOCATION}")));
    }
    let bits = r.u32("handle type")?;
    let handle_type = HandleType::from_vk(vk::ExternalMemoryHandleTypeFlags::from_raw(bits))
        .filter(|h| *h == HandleType::OpaqueFd)
        .ok_or_else(|| bad(format!("handle type {bits:#x} of a pool block is not opaque-fd")))?;
    let memory_type_index = r.u32("memory type index")?;
    if memory_type_index >= vk::MAX_MEMORY_TYPES as u32 {
        return Err(bad(format!("memory type index {memory_type_index} is not below {}", vk::MAX_MEMORY_TYPES)));
    }
    Ok(BlockDesc {
        block,
        size,
        handle_type,
        memory_type_index,
        device_uuid: r.array("device UUID")?,
        driver_uuid: r.array("driver UUID")?,
    })
}

pub(super) fn encode_handle(h: &PoolHandle, out: &mut Vec<u8>) {
    out.extend_from_slice(&h.block.to_le_bytes());
    out.extend_from_slice(&h.offset.to_le_bytes());
    out.extend_from_slice(&h.size.to_le_bytes());
    out.extend_from_slice(&h.generation.to_le_bytes());
}

pub(super) fn decode_handle(r: &mut Reader<'_>) -> Result<PoolHandle> {
    let block = r.u32("block")?;
    let offset = r.u64("offset")?;
    let size = r.u64("size")?;
    if size == 0 || offset.checked_add(size).is_none_or(|end| end > MAX_ALLOCATION) {
        return Err(bad(format!(
            "sub-allocation of {size} bytes at offset {offset} is empty or past {MAX_ALLOCATION}"
        )));
    }
    let generation = r.u64("generation")?;
    if generation == 0 {
        return Err(bad("generation 0 is never handed out"));
    }
    Ok(PoolHandle { block, offset, size, generation })
}

pub(super) fn encode_pooled(p: &PooledDesc, out: &mut Vec<u8>) {
    encode_handle(&p.handle, out);
    out.push(resource_kind(&p.resource));
    out.extend_from_slice(&p.layout.as_raw().to_le_bytes());
    out.extend_from_slice(&p.row_pitch.to_le_bytes());
    encode_resource(&p.resource, out);
}

pub(super) fn decode_pooled(r: &mut Reader<'_>) -> Result<PooledDesc> {
    let handle = decode_handle(r)?;
    let kind = r.array::<1>("kind")?[0];
    let layout = r.i32("layout")?;
    if !(0..=8).contains(&layout) {
        return Err(bad(format!("layout {layout} is not a layout an image is handed over in")));
    }
    let row_pitch = r.u64("row pitch")?;
    let resource = decode_resource(r, kind, handle.size, handle.offset)?;
    check_row_pitch(&resource, row_pitch, handle.size)?;
    Ok(PooledDesc { handle, resource, layout: vk::ImageLayout::from_raw(layout), row_pitch })
}
