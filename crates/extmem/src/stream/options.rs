//! What a stream is made of and how a subscriber takes part: [`StreamOptions`], [`Policy`],
//! [`Memory`], [`SubscribeOptions`].

use super::wait::Wait;
use crate::desc::{BufferDesc, ImageDesc, ResourceDesc};
use crate::error::{Error, Result};
use ash::vk;
use std::time::Duration;

/// Who waits for whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Each subscriber sees every frame; the publisher waits for a free slot (a holder past
    /// the hold timeout is dropped).
    #[default]
    Every,
    /// A subscriber holds at most one frame and skips to the newest; the publisher never waits.
    Latest,
}

impl Policy {
    /// "every" or "latest".
    pub fn name(self) -> &'static str {
        match self {
            Policy::Every => "every",
            Policy::Latest => "latest",
        }
    }
    pub(crate) fn code(self) -> u32 {
        match self {
            Policy::Every => 0,
            Policy::Latest => 1,
        }
    }
    pub(crate) fn from_code(code: u32) -> Policy {
        if code == 1 {
            Policy::Latest
        } else {
            Policy::Every
        }
    }
}

/// Where a stream's slots live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Memory {
    /// Exportable device memory (opaque fds): subscribers on the same device and driver.
    #[default]
    Device,
    /// Host memory (sealed memfds): any subscriber, with or without a Vulkan device (an
    /// image-shaped stream is then a buffer of width x height x 4 bytes, RGBA8, tightly packed).
    Host,
}

/// How a stream is made: one description for all its frames, the slot count, the policy.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Each frame's image or buffer.
    pub resource: ResourceDesc,
    /// Where the slots live.
    pub memory: Memory,
    /// Slots in the ring (2..=64; default 4).
    pub slots: u32,
    /// Every or latest.
    pub policy: Policy,
    /// A subscriber holding a frame the publisher waits for longer than this is dropped (every).
    pub hold_timeout: Duration,
    /// `acquire` fails after waiting this long for a slot, naming the subscriber it waited for.
    pub acquire_timeout: Duration,
    /// How the publisher waits for free slots.
    pub wait: Wait,
}

impl StreamOptions {
    fn new(resource: ResourceDesc) -> StreamOptions {
        StreamOptions {
            resource,
            memory: Memory::Device,
            slots: 4,
            policy: Policy::Every,
            hold_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            wait: Wait::Adaptive,
        }
    }
    /// A stream of images.
    pub fn image(desc: ImageDesc) -> StreamOptions {
        Self::new(ResourceDesc::Image(desc))
    }
    /// A stream of buffers.
    pub fn buffer(desc: BufferDesc) -> StreamOptions {
        Self::new(ResourceDesc::Buffer(desc))
    }
    /// With `n` slots.
    pub fn slots(mut self, n: u32) -> Self {
        self.slots = n;
        self
    }
    /// With `policy`.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
    /// With the slots in `memory`.
    pub fn memory(mut self, memory: Memory) -> Self {
        self.memory = memory;
        self
    }
    /// With a hold timeout (every).
    pub fn hold_timeout(mut self, d: Duration) -> Self {
        self.hold_timeout = d;
        self
    }
    /// With an acquire timeout.
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout = d;
        self
    }
    /// With the publisher waiting for slots as `wait` says.
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// The bytes of one frame's data in host memory (host streams).
    pub(crate) fn host_bytes(&self) -> Result<u64> {
        match self.resource {
            ResourceDesc::Buffer(b) => Ok(b.size),
            ResourceDesc::Image(i) => {
                if !matches!(
                    i.format,
                    vk::Format::R8G8B8A8_UNORM
                        | vk::Format::R8G8B8A8_SRGB
                        | vk::Format::B8G8R8A8_UNORM
                        | vk::Format::B8G8R8A8_SRGB
                ) {
                    return Err(Error::Invalid(format!(
                        "a host-memory image stream holds 4-byte RGBA/BGRA texels; {:?} is not one",
                        i.format
                    )));
                }
                if i.mip_levels != 1 || i.array_layers != 1 || i.extent.depth != 1 {
                    return Err(Error::Invalid("a host-memory image stream holds one 2D level and layer".into()));
                }
                Ok(i.extent.width as u64 * i.extent.height as u64 * 4)
            }
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if !(2..=super::ring::MAX_SLOTS).contains(&self.slots) {
            return Err(Error::Invalid(format!(
                "{} slots: a stream has 2 to {} slots",
                self.slots,
                super::ring::MAX_SLOTS
            )));
        }
        if self.policy == Policy::Latest && self.slots < 3 {
            return Err(Error::Invalid(format!(
                "{} slots for the latest policy: one subscriber needs at least 3 (one held, one newest, one to write)",
                self.slots
            )));
        }
        if self.memory == Memory::Host {
            let bytes = self.host_bytes()?;
            if bytes == 0 || bytes > crate::transport::message::MAX_ALLOCATION {
                return Err(Error::Invalid(format!("{bytes} bytes per frame")));
            }
        }
        Ok(())
    }
}

/// How a subscriber connects and waits.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// When the publisher dies, wait (up to the timeout, if any) for a new one under the name
    /// instead of failing.
    pub reconnect: bool,
    /// How `next` waits.
    pub wait: Wait,
    /// The longest wait for the publisher to appear and for each frame (`None`: no limit;
    /// waits still wake to notice a dead publisher).
    pub timeout: Option<Duration>,
    /// Accept a publisher on another GPU by copying (the multi-GPU path). Accepted; today a
    /// stream on another device is refused with both device UUIDs.
    pub peer_copy: bool,
}

impl SubscribeOptions {
    /// With `reconnect`.
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }
    /// With `wait`.
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }
    /// With a timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// With `peer_copy`.
    pub fn peer_copy(mut self, peer_copy: bool) -> Self {
        self.peer_copy = peer_copy;
        self
    }
}
