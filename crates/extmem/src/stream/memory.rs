//! A slot's memory on each side, and the one place where a stream exports and imports it
//! (so that changes to the import path touch only this file).
//!
//! Device streams: one exportable image or buffer per slot (a dedicated allocation, opaque
//! fd), exported to each subscriber once at join and imported once. Host streams: one sealed
//! memfd per slot, mapped by the publisher; a subscriber with a Vulkan device imports it by
//! pointer, one without maps it read-only.

use super::options::{Memory, StreamOptions};
use super::ring::RingInfo;
use super::shm::ReadOnlyBytes;
use crate::caps;
use crate::context::Context;
use crate::desc::{BufferDesc, Descriptor, ResourceDesc};
use crate::error::{Error, Result};
use crate::handle::HandleType;
use crate::host::HostMapping;
use crate::shared::{Dedicated, SharedMemory};
use ash::vk;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Host slots are sized in multiples of this (any device's `minImportedHostPointerAlignment`).
const HOST_ALIGN: u64 = 64 << 10;

/// A slot as the publisher owns it.
pub(crate) enum SlotMemory {
    Device(SharedMemory),
    Host { mapping: HostMapping, bytes: u64 },
}

// SAFETY: what keeps `SharedMemory` from being `Send`/`Sync` is the raw mapped pointer of its
// staging buffer, which it only touches under its own `Mutex`; its Vulkan handles are plain
// values, and the commands it records go through the context's locked queue. The publisher's
// control thread only exports (vkGetMemoryFdKHR, no externally synchronised parameter).
unsafe impl Send for SlotMemory {}
// SAFETY: as above.
unsafe impl Sync for SlotMemory {}

impl SlotMemory {
    pub(crate) fn create(ctx: Option<&Arc<Context>>, options: &StreamOptions) -> Result<SlotMemory> {
        match options.memory {
            Memory::Host => {
                let bytes = options.host_bytes()?;
                let len = bytes.next_multiple_of(HOST_ALIGN);
                let len = usize::try_from(len).map_err(|_| Error::Invalid(format!("{bytes} bytes per frame")))?;
                Ok(SlotMemory::Host { mapping: HostMapping::create(len)?, bytes })
            }
            Memory::Device => {
                let ctx = ctx.ok_or_else(|| {
                    Error::Invalid("a device-memory stream needs a Vulkan context (or use Memory::Host)".into())
                })?;
                let (h, d) = (HandleType::OpaqueFd, Dedicated::Always);
                Ok(SlotMemory::Device(match options.resource {
                    ResourceDesc::Image(i) => SharedMemory::new_image(ctx, i, h, d)?,
                    ResourceDesc::Buffer(b) => SharedMemory::new_buffer(ctx, b, h, d)?,
                }))
            }
        }
    }

    /// What a subscriber is sent for this slot, with a new descriptor.
    pub(crate) fn export(&self) -> Result<(Descriptor, OwnedFd)> {
        match self {
            SlotMemory::Device(m) => m.export(),
            SlotMemory::Host { mapping, bytes } => {
                let usage = vk::BufferUsageFlags::TRANSFER_SRC
                    | vk::BufferUsageFlags::TRANSFER_DST
                    | vk::BufferUsageFlags::STORAGE_BUFFER;
                let desc = Descriptor {
                    resource: ResourceDesc::Buffer(BufferDesc::new(*bytes, usage)),
                    handle_type: HandleType::HostAllocation,
                    allocation_size: mapping.len() as u64,
                    memory_type_index: 0,
                    memory_type_bits: 1,
                    dedicated: false,
                    offset: 0,
                    layout: vk::ImageLayout::UNDEFINED,
                    device_uuid: [0; 16],
                    driver_uuid: [0; 16],
                    row_pitch: 0,
                };
                Ok((desc, mapping.dup_fd()?))
            }
        }
    }
}

/// A slot as a subscriber imported it.
pub(crate) enum SubSlot {
    Device(SharedMemory),
    HostVulkan(SharedMemory),
    HostCpu(ReadOnlyBytes),
}

// SAFETY: as for `SlotMemory`; frames released on other threads touch only the rings.
unsafe impl Send for SubSlot {}
// SAFETY: as above.
unsafe impl Sync for SubSlot {}

impl SubSlot {
    /// Imports slot memory the publisher sent, after checking it against the ring's header.
    pub(crate) fn import(
        ctx: Option<&Arc<Context>>,
        info: &RingInfo,
        desc: &Descriptor,
        fd: OwnedFd,
        peer_copy: bool,
    ) -> Result<SubSlot> {
        let kind_ok = match desc.resource {
            ResourceDesc::Image(_) => info.memory == 1 && info.kind == 1,
            ResourceDesc::Buffer(_) => info.memory == 2 || info.kind == 2,
        };
        if !kind_ok {
            return Err(Error::Protocol(format!(
                "a slot of {:?} in a stream whose ring says memory {} kind {}",
                desc.resource, info.memory, info.kind
            )));
        }
        if info.memory == 2 {
            let ResourceDesc::Buffer(b) = desc.resource else { unreachable!("checked above") };
            if desc.handle_type != HandleType::HostAllocation || b.size < info.bytes {
                return Err(Error::Protocol(format!(
                    "a host-memory slot sent as {} of {} bytes; the ring says {} bytes of host memory",
                    desc.handle_type, b.size, info.bytes
                )));
            }
            return match ctx {
                Some(ctx) => Ok(SubSlot::HostVulkan(SharedMemory::import(ctx, desc, fd)?)),
                None => {
                    let len = usize::try_from(info.bytes).map_err(|_| Error::Protocol("slot too large".into()))?;
                    Ok(SubSlot::HostCpu(ReadOnlyBytes::open(fd, len)?))
                }
            };
        }
        let ctx = ctx.ok_or_else(|| {
            Error::Unsupported(
                "this stream's frames are in device memory: subscribe with a Vulkan context (Subscriber::connect)"
                    .into(),
            )
        })?;
        if desc.handle_type != HandleType::OpaqueFd {
            return Err(Error::Protocol(format!("a device slot sent as {}", desc.handle_type)));
        }
        if desc.device_uuid != ctx.device_uuid() || desc.driver_uuid != ctx.driver_uuid() {
            let how = if peer_copy { " (peer_copy is not implemented yet)" } else { "" };
            return Err(Error::Import(format!(
                "the stream is on another GPU or driver: publisher device {} driver {}, this side device {} driver {}; \
                 only same-device subscribers are served{how}",
                caps::hex(&desc.device_uuid),
                caps::hex(&desc.driver_uuid),
                caps::hex(&ctx.device_uuid()),
                caps::hex(&ctx.driver_uuid())
            )));
        }
        Ok(SubSlot::Device(SharedMemory::import(ctx, desc, fd)?))
    }

    /// The Vulkan memory, where this side has it.
    pub(crate) fn memory(&self) -> Option<&SharedMemory> {
        match self {
            SubSlot::Device(m) | SubSlot::HostVulkan(m) => Some(m),
            SubSlot::HostCpu(_) => None,
        }
    }

    /// The host bytes (first byte, length), for host streams.
    pub(crate) fn host(&self, bytes: u64) -> Option<(*const u8, usize)> {
        match self {
            SubSlot::HostCpu(b) => Some(b.raw()),
            SubSlot::HostVulkan(m) => m.host_mapping().map(|h| (h.ptr() as *const u8, (bytes as usize).min(h.len()))),
            SubSlot::Device(_) => None,
        }
    }
}
