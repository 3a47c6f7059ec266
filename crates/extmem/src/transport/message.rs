//! The wire format: a versioned, length-prefixed binary message.
//!
//! ```text
//! header (12 bytes): magic "EXTM" | version u16 | message type u16 | body length u32
//! body:              fixed fields of the message type, little endian, nothing after them
//! ```
//! Decoding is strict: wrong magic or version, a length that disagrees with the bytes, an
//! unknown type, trailing bytes and values out of range are all rejected with the field named.

use super::codec::{bad, Reader};
use super::pool_wire;
use super::resource_wire::{check_row_pitch, decode_resource, encode_resource, resource_kind};
use crate::desc::Descriptor;
use crate::error::Result;
use crate::handle::HandleType;
use crate::pool_desc::{BlockDesc, PoolHandle, PooledDesc};
use ash::vk;

/// The first bytes of every message.
pub const MAGIC: [u8; 4] = *b"EXTM";
/// The protocol version this crate speaks (2: the pool messages).
pub const VERSION: u16 = 2;
/// No message is longer than this (header included).
pub const MAX_MESSAGE: usize = 2048;
pub use super::codec::MAX_ALLOCATION;
const HEADER: usize = 12;
const MAX_DETAIL: usize = 1024;

/// A message between the two sides of a hand-off.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Shared memory; one file descriptor comes with it.
    Share(Descriptor),
    /// The sender's GPU work on frame `frame` is complete (host-side synchronisation).
    FrameReady {
        /// Frame number.
        frame: u64,
    },
    /// The receiver finished with frame `frame` and hands the memory back.
    FrameDone {
        /// Frame number.
        frame: u64,
    },
    /// The outcome of a check, with a human-readable detail.
    Verdict {
        /// Whether the check passed.
        ok: bool,
        /// What was seen.
        detail: String,
    },
    /// `len` bytes copied into host memory (a memfd, which comes with the message): the
    /// copying hand-off that zero-copy sharing is measured against.
    HostBytes {
        /// Number of bytes.
        len: u64,
    },
    /// A CUDA IPC handle (`cuIpcGetMemHandle`) of `len` bytes on the CUDA device `device_uuid`:
    /// CUDA's own sharing, the baseline Vulkan → CUDA sharing is measured against.
    CudaIpc {
        /// The 64 opaque bytes of `CUipcMemHandle`.
        handle: [u8; 64],
        /// Bytes.
        len: u64,
        /// The CUDA device's UUID.
        device_uuid: [u8; 16],
    },
    /// A shared timeline semaphore (opaque fd, which comes with the message): from now on,
    /// frame `n`'s producer work signals `2n+1` and the consumer's signals `2n+2`.
    ShareSemaphore,
    /// The sender is done and will close the connection.
    Bye,
    /// A block of an exportable pool; its descriptor comes with the message. Sent once per
    /// block and consumer; the consumer imports it once and keeps it.
    PoolBlock(BlockDesc),
    /// A resource in a sub-allocation of a block sent before: metadata only, no descriptor.
    PoolShare(PooledDesc),
    /// The consumer holds a bound resource (or a device pointer) for the sub-allocation.
    PoolHeld(PoolHandle),
    /// The consumer released the sub-allocation; it no longer touches those bytes.
    PoolRelease(PoolHandle),
}

const T_SHARE: u16 = 1;
const T_FRAME_READY: u16 = 2;
const T_FRAME_DONE: u16 = 3;
const T_VERDICT: u16 = 4;
const T_BYE: u16 = 5;
const T_HOST_BYTES: u16 = 6;
const T_SHARE_SEMAPHORE: u16 = 7;
const T_CUDA_IPC: u16 = 8;
const T_POOL_BLOCK: u16 = 9;
const T_POOL_SHARE: u16 = 10;
const T_POOL_HELD: u16 = 11;
const T_POOL_RELEASE: u16 = 12;

impl Message {
    /// How many file descriptors travel with this message.
    pub fn fd_count(&self) -> usize {
        match self {
            Message::Share(_) | Message::HostBytes { .. } | Message::ShareSemaphore | Message::PoolBlock(_) => 1,
            _ => 0,
        }
    }

    /// The message's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Share(_) => "Share",
            Message::FrameReady { .. } => "FrameReady",
            Message::FrameDone { .. } => "FrameDone",
            Message::Verdict { .. } => "Verdict",
            Message::HostBytes { .. } => "HostBytes",
            Message::ShareSemaphore => "ShareSemaphore",
            Message::CudaIpc { .. } => "CudaIpc",
            Message::Bye => "Bye",
            Message::PoolBlock(_) => "PoolBlock",
            Message::PoolShare(_) => "PoolShare",
            Message::PoolHeld(_) => "PoolHeld",
            Message::PoolRelease(_) => "PoolRelease",
        }
    }

    /// The wire bytes of the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(128);
        let ty = match self {
            Message::Share(d) => {
                encode_descriptor(d, &mut body);
                T_SHARE
            }
            Message::FrameReady { frame } => {
                body.extend_from_slice(&frame.to_le_bytes());
                T_FRAME_READY
            }
            Message::FrameDone { frame } => {
                body.extend_from_slice(&frame.to_le_bytes());
                T_FRAME_DONE
            }
            Message::Verdict { ok, detail } => {
                body.push(*ok as u8);
                let mut end = detail.len().min(MAX_DETAIL);
                while !detail.is_char_boundary(end) {
                    end -= 1;
                }
                body.extend_from_slice(&(end as u16).to_le_bytes());
                body.extend_from_slice(&detail.as_bytes()[..end]);
                T_VERDICT
            }
            Message::HostBytes { len } => {
                body.extend_from_slice(&len.to_le_bytes());
                T_HOST_BYTES
            }
            Message::ShareSemaphore => T_SHARE_SEMAPHORE,
            Message::CudaIpc { handle, len, device_uuid } => {
                body.extend_from_slice(handle);
                body.extend_from_slice(&len.to_le_bytes());
                body.extend_from_slice(device_uuid);
                T_CUDA_IPC
            }
            Message::Bye => T_BYE,
            Message::PoolBlock(b) => {
                pool_wire::encode_block(b, &mut body);
                T_POOL_BLOCK
            }
            Message::PoolShare(p) => {
                pool_wire::encode_pooled(p, &mut body);
                T_POOL_SHARE
            }
            Message::PoolHeld(h) => {
                pool_wire::encode_handle(h, &mut body);
                T_POOL_HELD
            }
            Message::PoolRelease(h) => {
                pool_wire::encode_handle(h, &mut body);
                T_POOL_RELEASE
            }
        };
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses and checks a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Message> {
        let mut r = Reader::new(bytes);
        if bytes.len() > MAX_MESSAGE {
            return Err(bad(format!("message of {} bytes is over the limit of {MAX_MESSAGE}", bytes.len())));
        }
        if r.take(4, "magic")? != MAGIC {
            return Err(bad("wrong magic: not an extmem message"));
        }
        let version = r.u16("version")?;
        if version != VERSION {
            return Err(bad(format!("protocol version {version}, this side speaks {VERSION}: update both sides")));
        }
        let ty = r.u16("message type")?;
        let len = r.u32("body length")? as usize;
        if len != bytes.len() - HEADER {
            return Err(bad(format!("body length says {len} bytes, {} arrived", bytes.len() - HEADER)));
        }
        let message = match ty {
            T_SHARE => Message::Share(decode_descriptor(&mut r)?),
            T_FRAME_READY => Message::FrameReady { frame: r.u64("frame")? },
            T_FRAME_DONE => Message::FrameDone { frame: r.u64("frame")? },
            T_VERDICT => {
                let ok = r.bool("ok")?;
                let n = r.u16("detail length")? as usize;
                if n > MAX_DETAIL {
                    return Err(bad(format!("detail of {n} bytes is over {MAX_DETAIL}")));
                }
                let detail = std::str::from_utf8(r.take(n, "detail")?).map_err(|_| bad("detail is not UTF-8"))?;
                Message::Verdict { ok, detail: detail.to_owned() }
            }
            T_BYE => Message::Bye,
            T_SHARE_SEMAPHORE => Message::ShareSemaphore,
            T_CUDA_IPC => Message::CudaIpc {
                handle: r.array("IPC handle")?,
                len: r.u64("length")?,
                device_uuid: r.array("device UUID")?,
            },
            T_HOST_BYTES => Message::HostBytes { len: r.u64("length")? },
            T_POOL_BLOCK => Message::PoolBlock(pool_wire::decode_block(&mut r)?),
            T_POOL_SHARE => Message::PoolShare(pool_wire::decode_pooled(&mut r)?),
            T_POOL_HELD => Message::PoolHeld(pool_wire::decode_handle(&mut r)?),
            T_POOL_RELEASE => Message::PoolRelease(pool_wire::decode_handle(&mut r)?),
            other => return Err(bad(format!("unknown message type {other}"))),
        };
        if r.position() != bytes.len() {
            return Err(bad(format!("{} trailing bytes after {}", bytes.len() - r.position(), message.name())));
        }
        Ok(message)
    }
}

pub(super) fn encode_descriptor(d: &Descriptor, out: &mut Vec<u8>) {
    out.push(resource_kind(&d.resource));
    out.extend_from_slice(&d.handle_type.to_vk().as_raw().to_le_bytes());
    out.extend_from_slice(&d.allocation_size.to_le_bytes());
    out.extend_from_slice(&d.memory_type_index.to_le_bytes());
    out.extend_from_slice(&d.memory_type_bits.to_le_bytes());
    out.push(d.dedicated as u8);
    out.extend_from_slice(&d.offset.to_le_bytes());
    out.extend_from_slice(&d.layout.as_raw().to_le_bytes());
    out.extend_from_slice(&d.device_uuid);
    out.extend_from_slice(&d.driver_uuid);
    out.extend_from_slice(&d.row_pitch.to_le_bytes());
    encode_resource(&d.resource, out);
}

fn decode_descriptor(r: &mut Reader<'_>) -> Result<Descriptor> {
    let kind = r.array::<1>("kind")?[0];
    let handle_bits = r.u32("handle type")?;
    let handle_type =
        HandleType::from_vk(vk::ExternalMemoryHandleTypeFlags::from_raw(handle_bits)).ok_or_else(|| {
            bad(format!("handle type {handle_bits:#x} is not one of opaque-fd, dma-buf, host-allocation"))
        })?;
    let allocation_size = r.u64("allocation size")?;
    if allocation_size == 0 || allocation_size > MAX_ALLOCATION {
        return Err(bad(format!("allocation size {allocation_size} is outside 1..={MAX_ALLOCATION}")));
    }
    let memory_type_index = r.u32("memory type index")?;
    let memory_type_bits = r.u32("memory type bits")?;
    if memory_type_index >= vk::MAX_MEMORY_TYPES as u32 || memory_type_bits & (1 << memory_type_index) == 0 {
        return Err(bad(format!("memory type index {memory_type_index} is not among the bits {memory_type_bits:#b}")));
    }
    let dedicated = r.bool("dedicated")?;
    let offset = r.u64("offset")?;
    if offset >= allocation_size {
        return Err(bad(format!("offset {offset} is past the allocation's {allocation_size} bytes")));
    }
    let layout = r.i32("layout")?;
    if !(0..=8).contains(&layout) {
        return Err(bad(format!("layout {layout} is not a layout an image is handed over in")));
    }
    let layout = vk::ImageLayout::from_raw(layout);
    let device_uuid = r.array("device UUID")?;
    let driver_uuid = r.array("driver UUID")?;
    let row_pitch = r.u64("row pitch")?;
    let resource = decode_resource(r, kind, allocation_size - offset, offset)?;
    check_row_pitch(&resource, row_pitch, allocation_size - offset)?;
    Ok(Descriptor {
        resource,
        row_pitch,
        handle_type,
        allocation_size,
        memory_type_index,
        memory_type_bits,
        dedicated,
        offset,
        layout,
        device_uuid,
        driver_uuid,
    })
}
