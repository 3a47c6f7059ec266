//! How a read or write is ordered with the other side (`extmem_handoff`): host fences, the
//! frame protocol's step for a role (with or without a shared timeline semaphore), or explicit
//! semaphore values. The frame protocol's choices come from the library's `frames::FrameSync`.

use crate::convert::input;
use crate::semaphore::{extmem_semaphore, get_optional};
use crate::status::{CResult, Failure};
use extmem_rs::frames::{Frame, FrameSync, Role};
use extmem_rs::Handoff;

/// Which half of the frame protocol a side speaks.
pub type extmem_role = u32;
/// Writes frames: signals ready, waits for done.
pub const EXTMEM_ROLE_PRODUCER: extmem_role = 0;
/// Reads (and may write back into) frames: waits for ready, signals done.
pub const EXTMEM_ROLE_CONSUMER: extmem_role = 1;

/// How an `extmem_handoff` orders one piece of GPU work.
pub type extmem_handoff_mode = u32;
/// Host ordering: extmem waits for its own fence (every driver can; lavapipe must).
pub const EXTMEM_HANDOFF_HOST: extmem_handoff_mode = 0;
/// The frame protocol's ordering of `role`'s work on `frame`, at `step`, on `semaphore`
/// (NULL: host ordering, the messages alone order the sides).
pub const EXTMEM_HANDOFF_FRAME: extmem_handoff_mode = 1;
/// Explicit: wait for `wait_value` of `wait_semaphore` before the work and signal
/// `signal_value` on `signal_semaphore` after (either NULL: none).
pub const EXTMEM_HANDOFF_EXPLICIT: extmem_handoff_mode = 2;

/// Which part of a side's work on a frame an `EXTMEM_HANDOFF_FRAME` hand-off orders.
pub type extmem_frame_step = u32;
/// Before touching the frame: the producer waits for the previous frame's done, the consumer
/// for this frame's ready.
pub const EXTMEM_FRAME_BEFORE: extmem_frame_step = 0;
/// After its work: the producer signals ready, the consumer done.
pub const EXTMEM_FRAME_AFTER: extmem_frame_step = 1;
/// Both, for the side's whole work on the frame in one submission.
pub const EXTMEM_FRAME_AROUND: extmem_frame_step = 2;
/// Waiting for the other side's signal of the frame (a producer reading back what the
/// consumer wrote).
pub const EXTMEM_FRAME_AFTER_PEER: extmem_frame_step = 3;

/// How a read or write is ordered with the other side.
#[repr(C)]
pub struct extmem_handoff {
    /// `sizeof(extmem_handoff)`.
    pub struct_size: u32,
    /// `EXTMEM_HANDOFF_*`.
    pub mode: extmem_handoff_mode,
    /// `EXTMEM_HANDOFF_FRAME`: `EXTMEM_ROLE_*`.
    pub role: extmem_role,
    /// `EXTMEM_HANDOFF_FRAME`: `EXTMEM_FRAME_*`.
    pub step: extmem_frame_step,
    /// `EXTMEM_HANDOFF_FRAME`: the frame's number.
    pub frame: u64,
    /// `EXTMEM_HANDOFF_FRAME`: the shared semaphore, or NULL.
    pub semaphore: *mut extmem_semaphore,
    /// `EXTMEM_HANDOFF_EXPLICIT`: the semaphore to wait for, or NULL.
    pub wait_semaphore: *mut extmem_semaphore,
    /// `EXTMEM_HANDOFF_EXPLICIT`: the value to wait for (timeline).
    pub wait_value: u64,
    /// `EXTMEM_HANDOFF_EXPLICIT`: the semaphore to signal, or NULL.
    pub signal_semaphore: *mut extmem_semaphore,
    /// `EXTMEM_HANDOFF_EXPLICIT`: the value to signal (timeline).
    pub signal_value: u64,
}

fn role(r: extmem_role, name: &str) -> CResult<Role> {
    match r {
        EXTMEM_ROLE_PRODUCER => Ok(Role::Producer),
        EXTMEM_ROLE_CONSUMER => Ok(Role::Consumer),
        r => Err(Failure::arg(format!("{name} is {r}: use EXTMEM_ROLE_PRODUCER or EXTMEM_ROLE_CONSUMER"))),
    }
}

/// Runs `f` with the library's `Handoff` for the caller's `handoff` (NULL: host ordering),
/// the semaphores it names held for the call.
///
/// # Safety
/// A non-null `handoff` points to the caller's struct.
pub(crate) unsafe fn with_handoff<R>(
    handoff: *const extmem_handoff,
    f: impl FnOnce(Handoff<'_>) -> CResult<R>,
) -> CResult<R> {
    if handoff.is_null() {
        return f(Handoff::host());
    }
    // SAFETY: the caller's struct.
    let h = unsafe { input(handoff, "handoff") }?;
    match h.mode {
        EXTMEM_HANDOFF_HOST => f(Handoff::host()),
        EXTMEM_HANDOFF_FRAME => {
            let s = get_optional(h.semaphore)?;
            let sync = FrameSync::new(role(h.role, "handoff->role")?).semaphore(s.as_deref());
            let frame = Frame::new(h.frame);
            f(match h.step {
                EXTMEM_FRAME_BEFORE => sync.before(frame),
                EXTMEM_FRAME_AFTER => sync.after(frame),
                EXTMEM_FRAME_AROUND => sync.around(frame),
                EXTMEM_FRAME_AFTER_PEER => sync.after_peer(frame),
                s => return Err(Failure::arg(format!("handoff->step is {s}: use an EXTMEM_FRAME_* value"))),
            })
        }
        EXTMEM_HANDOFF_EXPLICIT => {
            let (wait, signal) = (get_optional(h.wait_semaphore)?, get_optional(h.signal_semaphore)?);
            let mut handoff = Handoff::host();
            if let Some(w) = wait.as_deref() {
                handoff = handoff.wait(w, h.wait_value);
            }
            if let Some(s) = signal.as_deref() {
                handoff = handoff.signal(s, h.signal_value);
            }
            f(handoff)
        }
        m => Err(Failure::arg(format!("handoff->mode is {m}: use an EXTMEM_HANDOFF_* value"))),
    }
}
