//! The protocol's messages as one C struct (docs/src/protocol.md §2): `kind` says which, and
//! which fields count.

use crate::convert;
use crate::status::{CResult, Failure};
use crate::types::*;
use crate::vk_types::VkBool32;
use extmem_rs::transport::Message;
use std::ffi::{c_char, c_int};

/// A message type: the wire's type numbers (protocol.md §2).
pub type extmem_message_kind = u32;
/// `Share`: `descriptor`, with one fd.
pub const EXTMEM_MESSAGE_SHARE: extmem_message_kind = 1;
/// `FrameReady`: `frame`.
pub const EXTMEM_MESSAGE_FRAME_READY: extmem_message_kind = 2;
/// `FrameDone`: `frame`.
pub const EXTMEM_MESSAGE_FRAME_DONE: extmem_message_kind = 3;
/// `Verdict`: `ok` and `detail`.
pub const EXTMEM_MESSAGE_VERDICT: extmem_message_kind = 4;
/// `Bye`: no field.
pub const EXTMEM_MESSAGE_BYE: extmem_message_kind = 5;
/// `HostBytes`: `length`, with one fd (a sealed memfd).
pub const EXTMEM_MESSAGE_HOST_BYTES: extmem_message_kind = 6;
/// `ShareSemaphore`: no field, with one fd (an opaque semaphore fd).
pub const EXTMEM_MESSAGE_SHARE_SEMAPHORE: extmem_message_kind = 7;
/// `CudaIpc`: `cuda_ipc_handle`, `length`, `device_uuid`.
pub const EXTMEM_MESSAGE_CUDA_IPC: extmem_message_kind = 8;
/// `PoolBlock`: `block`, with one fd.
pub const EXTMEM_MESSAGE_POOL_BLOCK: extmem_message_kind = 9;
/// `PoolShare`: `pooled`.
pub const EXTMEM_MESSAGE_POOL_SHARE: extmem_message_kind = 10;
/// `PoolHeld`: `handle`.
pub const EXTMEM_MESSAGE_POOL_HELD: extmem_message_kind = 11;
/// `PoolRelease`: `handle`.
pub const EXTMEM_MESSAGE_POOL_RELEASE: extmem_message_kind = 12;

/// The longest `detail` of a `Verdict`, in bytes (without the NUL).
pub const EXTMEM_MAX_DETAIL: usize = 1024;

/// One message. `extmem_channel_recv` fills every field (those `kind` does not use are zero,
/// `fd` is -1 when the message carries none); `extmem_channel_send` reads only those `kind`
/// uses.
#[repr(C)]
pub struct extmem_message {
    /// `sizeof(extmem_message)`.
    pub struct_size: u32,
    /// `EXTMEM_MESSAGE_*`.
    pub kind: extmem_message_kind,
    /// The descriptor that travels with `SHARE`, `HOST_BYTES`, `SHARE_SEMAPHORE` and
    /// `POOL_BLOCK`; -1 for the others. Received: a new descriptor the caller owns and must
    /// close (or hand to an import, which takes it). Sent: borrowed, the caller still owns it.
    pub fd: c_int,
    /// `FRAME_READY`, `FRAME_DONE`: the frame's number.
    pub frame: u64,
    /// `HOST_BYTES`, `CUDA_IPC`: bytes.
    pub length: u64,
    /// `VERDICT`: `VK_TRUE` when the check passed.
    pub ok: VkBool32,
    /// `VERDICT`: what was seen, UTF-8, NUL-terminated. Received from another process: escape
    /// control characters before printing it.
    pub detail: [c_char; 1025],
    /// `SHARE`: what the memory is.
    pub descriptor: extmem_descriptor,
    /// `POOL_BLOCK`: the block.
    pub block: extmem_block_desc,
    /// `POOL_SHARE`: the pooled resource.
    pub pooled: extmem_pooled_desc,
    /// `POOL_HELD`, `POOL_RELEASE`: the sub-allocation.
    pub handle: extmem_pool_handle,
    /// `CUDA_IPC`: the 64 bytes of `CUipcMemHandle`.
    pub cuda_ipc_handle: [u8; 64],
    /// `CUDA_IPC`: the CUDA device's UUID.
    pub device_uuid: [u8; 16],
}

/// Fills `out` (whose `struct_size` was checked) from a received message, all other fields
/// zeroed; `fd` is stored as given (-1 for none).
pub(crate) fn fill(out: &mut extmem_message, message: &Message, fd: c_int) {
    let struct_size = out.struct_size;
    // SAFETY: every field is an integer, array or raw pointer-free struct: all zero is valid.
    *out = unsafe { std::mem::zeroed() };
    out.struct_size = struct_size;
    out.fd = fd;
    out.kind = match message {
        Message::Share(d) => {
            out.descriptor = convert::from_descriptor(d);
            EXTMEM_MESSAGE_SHARE
        }
        Message::FrameReady { frame } => {
            out.frame = *frame;
            EXTMEM_MESSAGE_FRAME_READY
        }
        Message::FrameDone { frame } => {
            out.frame = *frame;
            EXTMEM_MESSAGE_FRAME_DONE
        }
        Message::Verdict { ok, detail } => {
            out.ok = *ok as u32;
            for (o, b) in out.detail.iter_mut().zip(detail.bytes().take(EXTMEM_MAX_DETAIL)) {
                *o = b as c_char;
            }
            EXTMEM_MESSAGE_VERDICT
        }
        Message::Bye => EXTMEM_MESSAGE_BYE,
        Message::HostBytes { len } => {
            out.length = *len;
            EXTMEM_MESSAGE_HOST_BYTES
        }
        Message::ShareSemaphore => EXTMEM_MESSAGE_SHARE_SEMAPHORE,
        Message::CudaIpc { handle, len, device_uuid } => {
            out.cuda_ipc_handle = *handle;
            out.length = *len;
            out.device_uuid = *device_uuid;
            EXTMEM_MESSAGE_CUDA_IPC
        }
        Message::PoolBlock(b) => {
            out.block = convert::from_block(b);
            EXTMEM_MESSAGE_POOL_BLOCK
        }
        Message::PoolShare(p) => {
            out.pooled = convert::from_pooled(p);
            EXTMEM_MESSAGE_POOL_SHARE
        }
        Message::PoolHeld(h) => {
            out.handle = convert::from_handle(h);
            EXTMEM_MESSAGE_POOL_HELD
        }
        Message::PoolRelease(h) => {
            out.handle = convert::from_handle(h);
            EXTMEM_MESSAGE_POOL_RELEASE
        }
        // A message type this ABI version does not name: 0 (the library decoded it, so it is
        // well-formed; the caller cannot use it).
        _ => 0,
    };
}

/// The library's message from the caller's fields.
pub(crate) fn to_message(m: &extmem_message) -> CResult<Message> {
    Ok(match m.kind {
        EXTMEM_MESSAGE_SHARE => Message::Share(convert::to_descriptor(&m.descriptor, "message->descriptor")?),
        EXTMEM_MESSAGE_FRAME_READY => Message::FrameReady { frame: m.frame },
        EXTMEM_MESSAGE_FRAME_DONE => Message::FrameDone { frame: m.frame },
        EXTMEM_MESSAGE_VERDICT => {
            let end = m.detail.iter().position(|&c| c == 0).ok_or_else(|| {
                Failure::arg("message->detail is not NUL-terminated within its 1025 bytes".to_string())
            })?;
            let bytes: Vec<u8> = m.detail[..end].iter().map(|&c| c as u8).collect();
            let detail = String::from_utf8(bytes).map_err(|_| Failure::arg("message->detail is not UTF-8"))?;
            Message::Verdict { ok: convert::bool32(m.ok, "message->ok")?, detail }
        }
        EXTMEM_MESSAGE_BYE => Message::Bye,
        EXTMEM_MESSAGE_HOST_BYTES => Message::HostBytes { len: m.length },
        EXTMEM_MESSAGE_SHARE_SEMAPHORE => Message::ShareSemaphore,
        EXTMEM_MESSAGE_CUDA_IPC => {
            Message::CudaIpc { handle: m.cuda_ipc_handle, len: m.length, device_uuid: m.device_uuid }
        }
        EXTMEM_MESSAGE_POOL_BLOCK => Message::PoolBlock(convert::to_block(&m.block, "message->block")?),
        EXTMEM_MESSAGE_POOL_SHARE => Message::PoolShare(convert::to_pooled(&m.pooled, "message->pooled")?),
        EXTMEM_MESSAGE_POOL_HELD => Message::PoolHeld(convert::to_handle(&m.handle)),
        EXTMEM_MESSAGE_POOL_RELEASE => Message::PoolRelease(convert::to_handle(&m.handle)),
        k => return Err(Failure::arg(format!("message->kind is {k}: use an EXTMEM_MESSAGE_* value"))),
    })
}
