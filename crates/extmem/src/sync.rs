//! Handing a resource between two owners that do not share a queue: the queue-family
//! ownership transfer to and from `VK_QUEUE_FAMILY_EXTERNAL` that the specification asks for,
//! images in `VK_IMAGE_LAYOUT_GENERAL` while another API holds them (issue 2 of
//! VK_NV_external_memory), and the semaphores shared with the other side. The frame protocol
//! built on them is in [`crate::frames`].
//!
//! Frame synchronisation works the same way on every driver: the side that finished its GPU
//! work waits for its own fence (through the API that signalled it, never the other side's),
//! releases the resource to the external queue family, and says so on the socket
//! ([`crate::Message::FrameReady`] / [`crate::Message::FrameDone`]); the other side acquires it
//! before use.
//! lavapipe has no external semaphores, so this is the path it takes.

use crate::error::{Error, Result};
use ash::vk;

/// The one mip level and every layer of a colour image.
pub fn color_range(layers: u32, levels: u32) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange::default()
        .aspect_mask(vk::ImageAspectFlags::COLOR)
        .level_count(levels)
        .layer_count(layers)
}

/// Who holds a resource between two uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holder {
    /// Newly created: contents undefined, no owner yet.
    Fresh,
    /// Released to `VK_QUEUE_FAMILY_EXTERNAL` (images in `GENERAL`): the other side's or ours
    /// to acquire.
    External,
}

/// The barrier that takes a resource from `holder` into `family` for `access` (images into
/// `layout`).
pub fn acquire_image(
    image: vk::Image,
    range: vk::ImageSubresourceRange,
    holder: Holder,
    family: u32,
    layout: vk::ImageLayout,
    access: vk::AccessFlags,
) -> vk::ImageMemoryBarrier<'static> {
    let (old, src_family, dst_family) = match holder {
        Holder::Fresh => (vk::ImageLayout::UNDEFINED, vk::QUEUE_FAMILY_IGNORED, vk::QUEUE_FAMILY_IGNORED),
        Holder::External => (vk::ImageLayout::GENERAL, vk::QUEUE_FAMILY_EXTERNAL, family),
    };
    vk::ImageMemoryBarrier::default()
        .image(image)
        .subresource_range(range)
        .old_layout(old)
        .new_layout(layout)
        .src_queue_family_index(src_family)
        .dst_queue_family_index(dst_family)
        .dst_access_mask(access)
}

/// The barrier that releases an image from `family` to `VK_QUEUE_FAMILY_EXTERNAL` in
/// `GENERAL`, making `access` writes available.
pub fn release_image(
    image: vk::Image,
    range: vk::ImageSubresourceRange,
    family: u32,
    layout: vk::ImageLayout,
    access: vk::AccessFlags,
) -> vk::ImageMemoryBarrier<'static> {
    vk::ImageMemoryBarrier::default()
        .image(image)
        .subresource_range(range)
        .old_layout(layout)
        .new_layout(vk::ImageLayout::GENERAL)
        .src_queue_family_index(family)
        .dst_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
        .src_access_mask(access)
}

/// [`acquire_image`] for a buffer.
pub fn acquire_buffer(
    buffer: vk::Buffer,
    holder: Holder,
    family: u32,
    access: vk::AccessFlags,
) -> vk::BufferMemoryBarrier<'static> {
    let (src_family, dst_family) = match holder {
        Holder::Fresh => (vk::QUEUE_FAMILY_IGNORED, vk::QUEUE_FAMILY_IGNORED),
        Holder::External => (vk::QUEUE_FAMILY_EXTERNAL, family),
    };
    vk::BufferMemoryBarrier::default()
        .buffer(buffer)
        .size(vk::WHOLE_SIZE)
        .src_queue_family_index(src_family)
        .dst_queue_family_index(dst_family)
        .dst_access_mask(access)
}

/// [`release_image`] for a buffer.
pub fn release_buffer(buffer: vk::Buffer, family: u32, access: vk::AccessFlags) -> vk::BufferMemoryBarrier<'static> {
    vk::BufferMemoryBarrier::default()
        .buffer(buffer)
        .size(vk::WHOLE_SIZE)
        .src_queue_family_index(family)
        .dst_queue_family_index(vk::QUEUE_FAMILY_EXTERNAL)
        .src_access_mask(access)
}

/// Whether semaphores of `kind` can be exported and imported as opaque fds on `ctx`'s device
/// (a timeline one is what the semaphore-synchronised hand-off needs).
pub fn can_share_semaphores(ctx: &crate::context::Context, kind: SemaphoreKind) -> bool {
    let timeline = kind == SemaphoreKind::Timeline;
    if (timeline && !ctx.has_timeline_semaphores()) || !ctx.has_extension(ash::khr::external_semaphore_fd::NAME) {
        return false;
    }
    let mut ty = vk::SemaphoreTypeCreateInfo::default().semaphore_type(vk::SemaphoreType::TIMELINE);
    let mut info =
        vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD);
    if timeline {
        info = info.push_next(&mut ty);
    }
    let mut props = vk::ExternalSemaphoreProperties::default();
    // SAFETY: valid handles.
    unsafe {
        ctx.instance().get_physical_device_external_semaphore_properties(ctx.physical_device(), &info, &mut props)
    };
    let both = vk::ExternalSemaphoreFeatureFlags::EXPORTABLE | vk::ExternalSemaphoreFeatureFlags::IMPORTABLE;
    props.external_semaphore_features.contains(both)
}

/// What a [`SharedSemaphore`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SemaphoreKind {
    /// A timeline semaphore: values only grow; waits name the value they need.
    Timeline,
    /// A binary semaphore, where the device cannot share timelines: each signal is consumed by
    /// exactly one wait, and the signal must be submitted before its wait. Values given to
    /// submissions are ignored.
    Binary,
}

impl SemaphoreKind {
    /// "timeline" or "binary".
    pub fn name(self) -> &'static str {
        match self {
            SemaphoreKind::Timeline => "timeline",
            SemaphoreKind::Binary => "binary",
        }
    }

    fn vk_type(self) -> vk::SemaphoreType {
        match self {
            SemaphoreKind::Timeline => vk::SemaphoreType::TIMELINE,
            SemaphoreKind::Binary => vk::SemaphoreType::BINARY,
        }
    }
}

/// A semaphore shared between two Vulkan instances (or Vulkan and CUDA) through an opaque fd,
/// so that one side's GPU work waits for the other's on the GPU.
///
/// Timeline (preferred): values only grow; the side that finishes frame `n` signals a value
/// the other side's next submission waits for. Binary (the fallback): one wait per signal.
/// Each side's host waits only on its own fences.
pub struct SharedSemaphore {
    ctx: std::sync::Arc<crate::context::Context>,
    semaphore: vk::Semaphore,
    kind: SemaphoreKind,
}

impl SharedSemaphore {
    /// An exportable timeline semaphore with value 0.
    pub fn new_timeline(ctx: &std::sync::Arc<crate::context::Context>) -> Result<SharedSemaphore> {
        Self::new(ctx, SemaphoreKind::Timeline)
    }

    /// An exportable binary semaphore, unsignalled.
    pub fn new_binary(ctx: &std::sync::Arc<crate::context::Context>) -> Result<SharedSemaphore> {
        Self::new(ctx, SemaphoreKind::Binary)
    }

    /// An exportable semaphore of `kind`.
    pub fn new(ctx: &std::sync::Arc<crate::context::Context>, kind: SemaphoreKind) -> Result<SharedSemaphore> {
        if !can_share_semaphores(ctx, kind) {
            return Err(Error::Unsupported(format!(
                "{} cannot export {} semaphores as opaque fds{}; use host synchronisation",
                ctx.device_name(),
                kind.name(),
                ctx.semaphore_shortfall(kind == SemaphoreKind::Timeline)
            )));
        }
        let mut export =
            vk::ExportSemaphoreCreateInfo::default().handle_types(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD);
        let mut ty = vk::SemaphoreTypeCreateInfo::default().semaphore_type(kind.vk_type());
        let mut info = vk::SemaphoreCreateInfo::default().push_next(&mut export);
        if kind == SemaphoreKind::Timeline {
            info = info.push_next(&mut ty);
        }
        // SAFETY: a valid create info on a live device.
        let semaphore = unsafe { ctx.device().create_semaphore(&info, None) }
            .map_err(|result| Error::Vulkan { call: "vkCreateSemaphore (exportable)", result })?;
        Ok(SharedSemaphore { ctx: ctx.clone(), semaphore, kind })
    }

    /// A new opaque fd for the semaphore (close-on-exec); the caller owns it.
    pub fn export(&self) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        let f = ash::khr::external_semaphore_fd::Device::new(self.ctx.instance(), self.ctx.device());
        let info = vk::SemaphoreGetFdInfoKHR::default()
            .semaphore(self.semaphore)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD);
        // SAFETY: the semaphore was created exportable as an opaque fd.
        let raw = unsafe { f.get_semaphore_fd(&info) }
            .map_err(|result| Error::Vulkan { call: "vkGetSemaphoreFdKHR", result })?;
        // SAFETY: a successful export hands over a new descriptor.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| Error::Io { context: "setting FD_CLOEXEC".into(), source: e.into() })?;
        Ok(fd)
    }

    /// Imports a timeline semaphore another instance exported. `fd` is taken: Vulkan owns it on
    /// success, and it is closed on failure.
    pub fn import(ctx: &std::sync::Arc<crate::context::Context>, fd: std::os::fd::OwnedFd) -> Result<SharedSemaphore> {
        Self::import_as(ctx, fd, SemaphoreKind::Timeline)
    }

    /// Imports a semaphore of `kind` (the kind it was exported as); `fd` as in
    /// [`SharedSemaphore::import`].
    pub fn import_as(
        ctx: &std::sync::Arc<crate::context::Context>,
        fd: std::os::fd::OwnedFd,
        kind: SemaphoreKind,
    ) -> Result<SharedSemaphore> {
        use std::os::fd::{AsRawFd, IntoRawFd};
        if !can_share_semaphores(ctx, kind) {
            return Err(Error::Import(format!(
                "{} cannot import {} semaphores as opaque fds{}",
                ctx.device_name(),
                kind.name(),
                ctx.semaphore_shortfall(kind == SemaphoreKind::Timeline)
            )));
        }
        let mut ty = vk::SemaphoreTypeCreateInfo::default().semaphore_type(kind.vk_type());
        let mut info = vk::SemaphoreCreateInfo::default();
        if kind == SemaphoreKind::Timeline {
            info = info.push_next(&mut ty);
        }
        let d = ctx.device();
        // SAFETY: a valid create info on a live device.
        let semaphore = unsafe { d.create_semaphore(&info, None) }
            .map_err(|result| Error::Vulkan { call: "vkCreateSemaphore", result })?;
        let sem = SharedSemaphore { ctx: ctx.clone(), semaphore, kind };
        let f = ash::khr::external_semaphore_fd::Device::new(ctx.instance(), d);
        let import = vk::ImportSemaphoreFdInfoKHR::default()
            .semaphore(semaphore)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD)
            .fd(fd.as_raw_fd());
        // SAFETY: a valid import; on failure `fd` is dropped (closed) with the error.
        unsafe { f.import_semaphore_fd(&import) }
            .map_err(|result| Error::Vulkan { call: "vkImportSemaphoreFdKHR", result })?;
        let _ = fd.into_raw_fd(); // Vulkan owns it now
        Ok(sem)
    }

    /// Timeline or binary.
    pub fn kind(&self) -> SemaphoreKind {
        self.kind
    }

    /// The semaphore.
    pub fn handle(&self) -> vk::Semaphore {
        self.semaphore
    }

    /// The current value (timeline semaphores only).
    pub fn value(&self) -> Result<u64> {
        if self.kind != SemaphoreKind::Timeline {
            return Err(Error::Unsupported("a binary semaphore has no value".into()));
        }
        // SAFETY: a live timeline semaphore.
        unsafe { self.ctx.device().get_semaphore_counter_value(self.semaphore) }
            .map_err(|result| Error::Vulkan { call: "vkGetSemaphoreCounterValue", result })
    }
}

impl Drop for SharedSemaphore {
    fn drop(&mut self) {
        // SAFETY: `submit_with` waits for its work, so no pending operation uses it.
        unsafe { self.ctx.device().destroy_semaphore(self.semaphore, None) };
    }
}
