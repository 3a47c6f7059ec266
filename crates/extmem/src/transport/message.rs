//! The wire format: a versioned, length-prefixed binary message.
//!
//! ```text
//! header (12 bytes): magic "EXTM" | version u16 | message type u16 | body length u32
//! body:              fixed fields of the message type, little endian, nothing after them
//! ```
//! Decoding is strict: wrong magic or version, a length that disagrees with the bytes, an
//! unknown type, trailing bytes and values out of range are all rejected with the field named.

use crate::desc::{BufferDesc, Descriptor, ImageDesc, ResourceDesc};
use crate::error::{Error, Result};
use crate::handle::HandleType;
use ash::vk;

/// The first bytes of every message.
pub const MAGIC: [u8; 4] = *b"EXTM";
/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;
/// No message is longer than this (header included).
pub const MAX_MESSAGE: usize = 2048;
/// The largest allocation a descriptor may describe (1 TiB).
pub const MAX_ALLOCATION: u64 = 1 << 40;
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
}

const T_SHARE: u16 = 1;
const T_FRAME_READY: u16 = 2;
const T_FRAME_DONE: u16 = 3;
const T_VERDICT: u16 = 4;
const T_BYE: u16 = 5;
const T_HOST_BYTES: u16 = 6;
const T_SHARE_SEMAPHORE: u16 = 7;
const T_CUDA_IPC: u16 = 8;

impl Message {
    /// How many file descriptors travel with this message.
    pub fn fd_count(&self) -> usize {
        match self {
            Message::Share(_) | Message::HostBytes { .. } | Message::ShareSemaphore => 1,
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
        let mut r = Reader { bytes, at: 0 };
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
            other => return Err(bad(format!("unknown message type {other}"))),
        };
        if r.at != bytes.len() {
            return Err(bad(format!("{} trailing bytes after {}", bytes.len() - r.at, message.name())));
        }
        Ok(message)
    }
}

fn bad(detail: impl Into<String>) -> Error {
    Error::Protocol(detail.into())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| bad(format!("truncated at {field} (byte {} of {})", self.at, self.bytes.len())))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        Ok(self.take(N, field)?.try_into().expect("length checked"))
    }
    fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn i32(&mut self, field: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn bool(&mut self, field: &str) -> Result<bool> {
        match self.array::<1>(field)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(bad(format!("{field} is {v}, not 0 or 1"))),
        }
    }
}

const KIND_IMAGE: u8 = 1;
const KIND_BUFFER: u8 = 2;

fn encode_descriptor(d: &Descriptor, out: &mut Vec<u8>) {
    out.push(match d.resource {
        ResourceDesc::Image(_) => KIND_IMAGE,
        ResourceDesc::Buffer(_) => KIND_BUFFER,
    });
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
    match d.resource {
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
    matches!(f, 1..=184 | 1_000_156_000..=1_000_156_033 | 1_000_054_000..=1_000_054_007
        | 1_000_066_000..=1_000_066_013 | 1_000_330_000..=1_000_330_003 | 1_000_340_000..=1_000_340_001)
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
    let resource = match kind {
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
            if size == 0 || size > allocation_size - offset {
                return Err(bad(format!(
                    "buffer of {size} bytes at offset {offset} does not fit {allocation_size} bytes"
                )));
            }
            let usage = r.u32("usage")?;
            if usage == 0 {
                return Err(bad("buffer usage is empty"));
            }
            ResourceDesc::Buffer(BufferDesc { size, usage: vk::BufferUsageFlags::from_raw(usage) })
        }
        other => return Err(bad(format!("resource kind {other} is neither image (1) nor buffer (2)"))),
    };
    if row_pitch != 0 {
        let ResourceDesc::Image(i) = resource else {
            return Err(bad("a row pitch for a buffer"));
        };
        let rows = i.extent.height as u64 * i.extent.depth as u64;
        if i.tiling != vk::ImageTiling::LINEAR
            || row_pitch < i.extent.width as u64
            || row_pitch.saturating_mul(rows) > allocation_size - offset
        {
            return Err(bad(format!(
                "row pitch {row_pitch} does not fit a {:?} {}x{} image in {allocation_size} bytes",
                i.tiling, i.extent.width, i.extent.height
            )));
        }
    }
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
