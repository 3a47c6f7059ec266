//! The import gate: the one place that decides whether a received description and descriptor
//! may reach a driver. Every path that turns them into driver objects goes through it: the
//! share import ([`crate::SharedMemory::import`]), a pool's blocks and hand-offs
//! ([`crate::pool::PoolImporter`]), and the importers of other APIs (CUDA, OpenGL), which call
//! [`check_foreign`].
//!
//! Each check returns a [`Checked`] description, which only this module can make; creating a
//! resource or importing memory takes a `Checked` one, so a new importer cannot skip the gate.
//! In order, before any driver call: the handle type the device supports, the description's
//! rules ([`crate::gate::rules`] over [`crate::gate::limits`]), what the descriptor is ([`crate::gate::fdkind`],
//! then seals and size, [`received`]), UUIDs and memory types.

pub mod fdkind;
pub mod limits;
pub mod received;
pub mod rules;

use crate::caps;
use crate::context::Context;
use crate::desc::{Descriptor, ResourceDesc};
use crate::error::{Error, Result};
use crate::handle::HandleType;
use crate::pool_desc::{BlockDesc, PooledDesc};
use rules::DeviceLimits;
use std::os::fd::BorrowedFd;

/// A description that passed the gate. Only the gate makes one; resource creation and memory
/// import take one, so nothing reaches a driver unchecked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked<T>(T);

impl<T> Checked<T> {
    /// The checked description.
    pub fn get(&self) -> &T {
        &self.0
    }
    /// The description, no longer marked checked.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Checked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Checked<Descriptor> {
    /// The resource of a checked descriptor (checked with it).
    pub(crate) fn resource(&self) -> Checked<ResourceDesc> {
        Checked(self.0.resource)
    }
}

/// A description this process made itself, checked before a safe creation function passes it
/// to the driver.
pub(crate) fn check_create(ctx: &Context, desc: &ResourceDesc, h: HandleType) -> Result<Checked<ResourceDesc>> {
    crate::gate::limits::check_create(ctx, desc, h)?;
    Ok(Checked(*desc))
}

/// A shared allocation a peer sent (`Share`) and its descriptor.
pub fn check_share(ctx: &Context, desc: &Descriptor, fd: BorrowedFd<'_>) -> Result<Checked<Descriptor>> {
    let h = desc.handle_type;
    if !ctx.supports_handle_type(h) {
        return Err(Error::Import(format!(
            "{} has no {:?}: it cannot import {h} memory",
            ctx.device_name(),
            h.extension()
        )));
    }
    // The descriptor's own shape and Vulkan rules first (the more telling reason where both
    // are wrong), then what the fd is.
    if h == HandleType::HostAllocation
        && (!matches!(desc.resource, ResourceDesc::Buffer(_)) || desc.offset != 0 || desc.dedicated)
    {
        return Err(Error::Import("host-allocation memory comes as a buffer at offset 0 of a plain allocation".into()));
    }
    crate::gate::limits::check_import(ctx, desc)?;
    if h == HandleType::HostAllocation {
        crate::host::check_received_fd(fd, desc.allocation_size)?;
    } else {
        received::check_fd(h, fd, desc.allocation_size, crate::gate::fdkind::opaque_export(ctx).as_ref())?;
    }
    // Memory another API made (CUDA) has no driver UUID: the device UUID must match.
    let other_api = h == HandleType::OpaqueFd && desc.from_other_api();
    if h == HandleType::OpaqueFd
        && (desc.device_uuid != ctx.device_uuid() || (!other_api && desc.driver_uuid != ctx.driver_uuid()))
    {
        return Err(Error::Import(format!(
            "the memory comes from another device or driver (device UUID {} / driver UUID {}, this side {} / {}): \
             an opaque fd imports only on the same device and driver; pick that device (EXTMEM_DEVICE, see `extmem caps`)",
            caps::hex(&desc.device_uuid),
            caps::hex(&desc.driver_uuid),
            caps::hex(&ctx.device_uuid()),
            caps::hex(&ctx.driver_uuid())
        )));
    }
    if !importable(ctx, &desc.resource, h) {
        let what = if h == HandleType::HostAllocation { "from host memory".to_string() } else { format!("as {h}") };
        return Err(Error::Import(format!("{} cannot import {:?} {what}", ctx.device_name(), desc.resource)));
    }
    if desc.dedicated && desc.offset != 0 {
        return Err(Error::Import(format!("a dedicated allocation with the resource at offset {}", desc.offset)));
    }
    Ok(Checked(*desc))
}

/// A pool block a producer sent (`PoolBlock`) and its descriptor.
pub fn check_block(ctx: &Context, desc: &BlockDesc, fd: BorrowedFd<'_>) -> Result<Checked<BlockDesc>> {
    if desc.handle_type != HandleType::OpaqueFd || !ctx.supports_handle_type(desc.handle_type) {
        return Err(Error::Import(format!(
            "pool block {}: {} cannot import it as {}",
            desc.block,
            ctx.device_name(),
            desc.handle_type
        )));
    }
    let max = crate::gate::limits::device_limits(ctx).max_memory_allocation_size;
    if desc.size == 0 || desc.size > max {
        return Err(Error::Import(format!(
            "pool block {}: size {} is outside 1..={max} (maxMemoryAllocationSize)",
            desc.block, desc.size
        )));
    }
    if desc.device_uuid != ctx.device_uuid() || desc.driver_uuid != ctx.driver_uuid() {
        return Err(Error::Import(format!(
            "pool block {} comes from another device or driver (device UUID {}, this side {}): an opaque fd \
             imports only on the same device and driver; pick that device (EXTMEM_DEVICE, see `extmem caps`)",
            desc.block,
            caps::hex(&desc.device_uuid),
            caps::hex(&ctx.device_uuid())
        )));
    }
    let count = ctx.memory_properties().memory_type_count;
    if desc.memory_type_index >= count {
        return Err(Error::Import(format!(
            "pool block {} is memory type {}, this device has {count} memory type(s)",
            desc.block, desc.memory_type_index
        )));
    }
    received::check_fd(desc.handle_type, fd, desc.size, crate::gate::fdkind::opaque_export(ctx).as_ref())
        .map_err(|e| Error::Import(format!("pool block {}: {}", desc.block, strip(&e))))?;
    Ok(Checked(*desc))
}

/// A pooled hand-off (`PoolShare`): its resource, against the same rules as a share's.
pub fn check_pooled(ctx: &Context, desc: &PooledDesc) -> Result<Checked<ResourceDesc>> {
    let h = HandleType::OpaqueFd;
    crate::gate::limits::check_resource(ctx, &desc.resource, h)
        .map_err(|b| Error::Import(format!("hand-off {}: {b}", desc.handle)))?;
    if !importable(ctx, &desc.resource, h) {
        return Err(Error::Import(format!(
            "hand-off {}: {} cannot import {:?} as {h}",
            desc.handle,
            ctx.device_name(),
            desc.resource
        )));
    }
    Ok(Checked(desc.resource))
}

/// For importers of another API (CUDA, OpenGL), which have no Vulkan device to ask: the
/// descriptor's rules against `limits` (that API's own), the resource inside the allocation,
/// and what `fd` is (its kind, and a memfd's seals and size).
pub fn check_foreign(desc: &Descriptor, fd: BorrowedFd<'_>, limits: &DeviceLimits) -> Result<Checked<Descriptor>> {
    rules::check_descriptor_shape(desc, limits).map_err(|b| Error::Import(format!("descriptor {b}")))?;
    if let ResourceDesc::Buffer(b) = desc.resource {
        if desc.offset.checked_add(b.size).is_none_or(|end| end > desc.allocation_size) {
            return Err(Error::Import(format!(
                "descriptor size: a {}-byte buffer at offset {} does not fit the {}-byte allocation",
                b.size, desc.offset, desc.allocation_size
            )));
        }
    }
    if desc.dedicated && desc.offset != 0 {
        return Err(Error::Import(format!("a dedicated allocation with the resource at offset {}", desc.offset)));
    }
    if desc.handle_type == HandleType::HostAllocation {
        crate::host::check_received_fd(fd, desc.allocation_size)?;
    } else {
        received::check_fd(desc.handle_type, fd, desc.allocation_size, None)?;
    }
    Ok(Checked(*desc))
}

/// Limits for [`check_foreign`] where the importing API has no Vulkan limits to ask: the
/// largest allocation it can hold (a CUDA device's memory, say), and image dimensions as large
/// as any Vulkan device makes (the importer maps bytes; it does not create the image).
pub fn foreign_limits(max_allocation: u64) -> DeviceLimits {
    DeviceLimits {
        max_image_dimension_2d: 1 << 16,
        max_image_dimension_3d: 1 << 14,
        max_image_array_layers: 1 << 12,
        max_framebuffer_width: 1 << 16,
        max_framebuffer_height: 1 << 16,
        max_memory_allocation_size: max_allocation,
    }
}

fn importable(ctx: &Context, desc: &ResourceDesc, h: HandleType) -> bool {
    let features = match desc {
        ResourceDesc::Image(i) => caps::image_features(ctx.instance(), ctx.physical_device(), i, h),
        ResourceDesc::Buffer(b) => caps::buffer_features(ctx.instance(), ctx.physical_device(), b, h),
    };
    features.is_some_and(|f| f.importable)
}

/// An import error's text without its "import refused: " prefix (to prefix it with more).
fn strip(e: &Error) -> String {
    match e {
        Error::Import(s) => s.clone(),
        other => other.to_string(),
    }
}
