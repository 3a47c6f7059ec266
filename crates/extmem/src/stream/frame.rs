//! [`StreamFrame`]: one frame a subscriber holds until it drops it.

use super::conn::Conn;
use crate::shared::{Handoff, SharedMemory};
use ash::vk;
use std::sync::Arc;
use std::time::Duration;

/// A frame taken from a stream; released to the publisher when dropped (with the latest
/// policy, at the latest when the subscriber's `next` is called again).
pub struct StreamFrame {
    pub(crate) conn: Arc<Conn>,
    pub(crate) slot: u32,
    pub(crate) index: u64,
    pub(crate) ready: u64,
    pub(crate) timestamp_ns: u64,
    pub(crate) meta_len: usize,
    pub(crate) meta: [u8; super::ring::MAX_METADATA],
}

impl StreamFrame {
    /// The frame number (from 0 per publisher life, strictly increasing).
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The ring slot it is in.
    pub fn slot(&self) -> u32 {
        self.slot
    }
    /// When the publisher published it (CLOCK_MONOTONIC).
    pub fn timestamp(&self) -> Duration {
        Duration::from_nanos(self.timestamp_ns)
    }
    /// [`StreamFrame::timestamp`] in nanoseconds.
    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    /// The publisher's ready value for it (its timeline: frame number + 1).
    pub fn ready_value(&self) -> u64 {
        self.ready
    }
    /// The user metadata published with it (at most 256 bytes).
    pub fn metadata(&self) -> &[u8] {
        &self.meta[..self.meta_len]
    }
    /// The imported Vulkan memory holding it (device streams, and host streams on a
    /// subscriber with a Vulkan context). Images are in `GENERAL`.
    pub fn memory(&self) -> Option<&SharedMemory> {
        self.conn.slots[self.slot as usize].memory()
    }
    /// The image, for an image stream in device memory.
    pub fn image(&self) -> Option<vk::Image> {
        self.memory().and_then(|m| m.image())
    }
    /// The buffer, for a buffer stream (or any host-memory stream on a Vulkan subscriber).
    pub fn buffer(&self) -> Option<vk::Buffer> {
        self.memory().and_then(|m| m.buffer())
    }
    /// How work on the frame is ordered after the publisher's: the publisher's work was
    /// complete on the host before the frame was published, so the host path.
    pub fn handoff(&self) -> Handoff<'static> {
        Handoff::host()
    }
    /// Host-memory streams: the frame's bytes (first byte, length), readable while the frame
    /// is held.
    pub fn host_ptr(&self) -> Option<(*const u8, usize)> {
        self.conn.slots[self.slot as usize].host(self.conn.info.bytes)
    }
    /// Host-memory streams: a copy of the frame's bytes.
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        let (ptr, len) = self.host_ptr()?;
        let mut out = vec![0u8; len];
        // SAFETY: the mapping holds `len` bytes while `conn` lives; the publisher does not
        // rewrite a held slot (a publisher that does is only able to change the bytes read).
        unsafe { std::ptr::copy_nonoverlapping(ptr, out.as_mut_ptr(), len) };
        Some(out)
    }
    /// Width and height of an image-shaped stream (0, 0 for a buffer stream).
    pub fn extent(&self) -> (u32, u32) {
        (self.conn.info.width, self.conn.info.height)
    }
}

/// Keeps a stream connection's mappings alive (not the frame: the frame may be released and
/// its slot rewritten while this lives). For bindings that hand a frame's memory to another
/// runtime whose views may outlive the frame.
#[derive(Clone)]
pub struct FrameMapping {
    _conn: Arc<Conn>,
}

impl StreamFrame {
    /// A handle that keeps this frame's memory mapped (see [`FrameMapping`]).
    pub fn mapping(&self) -> FrameMapping {
        FrameMapping { _conn: self.conn.clone() }
    }
}

impl Drop for StreamFrame {
    fn drop(&mut self) {
        self.conn.release(self.slot, self.index);
    }
}

impl std::fmt::Debug for StreamFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamFrame")
            .field("index", &self.index)
            .field("slot", &self.slot)
            .field("timestamp_ns", &self.timestamp_ns)
            .field("metadata_len", &self.meta_len)
            .finish()
    }
}
