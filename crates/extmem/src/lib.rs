//! extmem: share Vulkan memory with other processes, Vulkan instances and APIs, safely.
//!
//! - [`Context`]: an instance and device set up for sharing, with or without the extmem layer
//!   (the VK_NV_external_memory path or the core KHR path).
//! - [`caps`]: what a device can export and import, in one typed answer.
//! - [`SharedMemory`]: exportable images and buffers that own their Vulkan objects; export to
//!   an [`std::os::fd::OwnedFd`] and import from one, with the checks the specification
//!   implies done before the driver is asked.
//! - [`transport`]: a versioned descriptor and a Unix socket that carries it with the fd.
//! - [`pool`]: an exportable memory pool: blocks exported once, sub-allocations handed over
//!   as metadata to several consumers, each with its own references.
//! - [`frames`]: the frame protocol ([`frames::Frame`]'s timeline values, [`frames::FrameProtocol`]).
//! - [`Handoff`]: how a read, write or fill is ordered with the other side.
//! - [`Context::from_app`] and [`external`]: extmem inside a program that made its own
//!   instance and device (ash, vulkano, wgpu): export and import of resources the application
//!   owns, and the hand-off recorded into its command buffers.
//! - [`sync`]: queue-family ownership hand-off (`VK_QUEUE_FAMILY_EXTERNAL`, `GENERAL`) and
//!   frame synchronisation between the two sides.
//!
//! File descriptor ownership: `import` takes an `OwnedFd` and hands the driver a duplicate; a
//! successful import takes the duplicate, and after a failed one the duplicate is closed only
//! if the driver left it open (drivers differ; see [`fdkind`]), so no descriptor is ever
//! closed twice or leaked.
//! Before any driver sees a received descriptor, [`fdkind`] checks what kind of file it is and
//! [`rules`] checks the description against Vulkan's valid-usage rules and the device's limits.

pub mod caps;
mod context;
mod desc;
mod error;
pub mod external;
pub mod fdkind;
pub mod frames;
mod handle;
pub mod host;
pub mod layer;
pub mod limits;
#[cfg(feature = "testing")]
pub mod pattern;
pub mod pool;
mod pool_desc;
pub mod rules;
mod shared;
pub mod sync;
pub mod transport;
pub mod validation;

pub use ash;
pub use ash::vk;
pub use context::{AppDevice, Context, ContextOptions, PathKind, QueueAccess, QueueGuard, QueueKind, Submission};
pub use desc::{BufferDesc, Descriptor, ImageDesc, ResourceDesc};
pub use error::{Error, Result};
pub use handle::HandleType;
pub use shared::{Dedicated, Handoff, ImportSteps, SharedMemory};
pub use transport::Message;
