//! Streams: frames published under a name, taken by any number of subscribers in other
//! processes, with no socket message per frame.
//!
//! ```text
//! publisher process                               subscriber process
//! Publisher::create(ctx, "cam", options)          Subscriber::connect(ctx, "cam")
//!   slots (device or host memory), its ring  -->    joins once over the stream's socket:
//!   a control thread accepts joins                  imports each slot once, sends its ring
//! loop { slot = acquire(); write; publish }       loop { frame = next()?; read; drop(frame) }
//!        ring entry "slot s holds frame n" ---->    (poll, or sleep on a shared futex)
//!        <---- release of frame n, in the subscriber's own ring
//! ```
//! - Names: `[A-Za-z0-9._-]{1,64}` ([`name::check_name`]); a name in use is refused with its
//!   owner's pid.
//! - Shared memory: each direction its own memfd, written by one side only and sealed
//!   ([`ring`]); every value read from it is copied once and checked.
//! - Policies ([`Policy`]): every frame to every subscriber (the publisher waits, a holder past
//!   the hold timeout is dropped), or the latest frame (the publisher never waits).
//! - Faults: a subscriber that leaves or dies frees its slots (the control thread watches its
//!   socket and pidfd); a publisher that dies ends its subscribers with an error distinct from
//!   the clean end, or, asked for, they reconnect to its successor.
//! - Synchronisation: host-completed frames (the publisher's work is done when it publishes;
//!   a subscriber's release is a value in its ring), which every driver can do, lavapipe
//!   included. A frame's ready value is its number + 1.

pub mod bench;
mod conn;
mod control;
mod floor;
#[cfg(feature = "testing")]
pub mod forge;
mod frame;
mod memory;
pub mod name;
mod options;
mod publisher;
pub mod ring;
mod shm;
mod state;
mod subscriber;
mod wait;

pub use frame::{FrameMapping, StreamFrame};
pub use options::{Memory, Policy, StreamOptions, SubscribeOptions};
pub use publisher::{Publisher, Slot, SlotMapping};
pub use subscriber::{Subscriber, STUCK};
pub use wait::{monotonic_ns, syscalls, Wait, SPIN};
