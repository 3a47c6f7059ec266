//! Handing a resource between two owners that do not share a queue: the queue-family
//! ownership transfer to and from `VK_QUEUE_FAMILY_EXTERNAL` that the specification asks for,
//! images in `VK_IMAGE_LAYOUT_GENERAL` while another API holds them (issue 2 of
//! VK_NV_external_memory), and the frame protocol that tells the other side when it may go on.
//!
//! Frame synchronisation works the same way on every driver: the side that finished its GPU
//! work waits for its own fence (through the API that signalled it, never the other side's),
//! releases the resource to the external queue family, and says so on the socket
//! ([`Message::FrameReady`] / [`Message::FrameDone`]); the other side acquires it before use.
//! lavapipe has no external semaphores, so this is the path it takes.

use crate::error::{Error, Result};
use crate::transport::{Channel, Message};
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
pub fn acquire_buffer(buffer: vk::Buffer, holder: Holder, family: u32, access: vk::AccessFlags) -> vk::BufferMemoryBarrier<'static> {
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

/// Tells the peer that this side's work on `frame` is complete and the memory released.
pub fn signal_ready(channel: &Channel, frame: u64) -> Result<()> {
    channel.send(&Message::FrameReady { frame }, &[])
}

/// Waits for the peer's [`signal_ready`] of `frame`.
pub fn wait_ready(channel: &Channel, frame: u64) -> Result<()> {
    match channel.recv_plain("FrameReady")? {
        Message::FrameReady { frame: f } if f == frame => Ok(()),
        other => Err(Error::Protocol(format!("expected FrameReady {frame}, got {other:?}"))),
    }
}

/// Tells the peer this side is done with `frame` and hands the memory back.
pub fn signal_done(channel: &Channel, frame: u64) -> Result<()> {
    channel.send(&Message::FrameDone { frame }, &[])
}

/// Waits for the peer's [`signal_done`] of `frame`.
pub fn wait_done(channel: &Channel, frame: u64) -> Result<()> {
    match channel.recv_plain("FrameDone")? {
        Message::FrameDone { frame: f } if f == frame => Ok(()),
        other => Err(Error::Protocol(format!("expected FrameDone {frame}, got {other:?}"))),
    }
}
