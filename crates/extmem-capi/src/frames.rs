//! The frame protocol's messages (docs/src/protocol.md §4): `FrameReady` / `FrameDone` on a
//! channel, and its timeline values (frame n: ready `2n+1`, done `2n+2`), which come from the
//! library's `frames` module, their one owner. The GPU ordering of each side's work is
//! `extmem_handoff` (`handoff.rs`).
//!
//! The `extmem_frames_` prefix keeps these apart from the stream frames (`extmem_frame_*`).

use crate::channel;
use crate::status::{extmem_status, guard};
use extmem_rs::frames::{Frame, FrameProtocol, Role};

/// The timeline value that marks frame `frame` written and released: `2 * frame + 1`
/// (frame numbers saturate at 2^63 - 2).
#[no_mangle]
pub extern "C" fn extmem_frames_ready_value(frame: u64) -> u64 {
    Frame::new(frame.min(u64::MAX / 2 - 1)).ready()
}

/// The timeline value that marks the consumer done with frame `frame`: `2 * frame + 2`
/// (frame numbers saturate at 2^63 - 2).
#[no_mangle]
pub extern "C" fn extmem_frames_done_value(frame: u64) -> u64 {
    Frame::new(frame.min(u64::MAX / 2 - 1)).done()
}

/// Runs one step of the protocol on `ch` as `role`.
fn step(
    name: &str,
    ch: *mut channel::extmem_channel,
    f: impl FnOnce(&FrameProtocol<'_>) -> extmem_rs::Result<()>,
) -> extmem_status {
    guard(name, || {
        let ch = channel::get(ch)?;
        // The role only matters for the GPU half, which these functions do not use.
        f(&FrameProtocol::new(&ch.channel, Role::Producer))?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Producer: tells the other side that `frame` is written and released (`FrameReady`).
#[no_mangle]
pub unsafe extern "C" fn extmem_frames_signal_ready(ch: *mut channel::extmem_channel, frame: u64) -> extmem_status {
    step("extmem_frames_signal_ready", ch, |p| p.signal_ready(Frame::new(frame)))
}

/// Consumer: waits (up to the channel's timeout) for `FrameReady(frame)`; any other message
/// is `EXTMEM_ERROR_PROTOCOL`, a failure `Verdict` or a vanished peer `EXTMEM_ERROR_PEER`.
#[no_mangle]
pub unsafe extern "C" fn extmem_frames_wait_ready(ch: *mut channel::extmem_channel, frame: u64) -> extmem_status {
    step("extmem_frames_wait_ready", ch, |p| p.wait_ready(Frame::new(frame)))
}

/// Consumer: tells the other side it is done with `frame` (`FrameDone`).
#[no_mangle]
pub unsafe extern "C" fn extmem_frames_signal_done(ch: *mut channel::extmem_channel, frame: u64) -> extmem_status {
    step("extmem_frames_signal_done", ch, |p| p.signal_done(Frame::new(frame)))
}

/// Producer: waits for `FrameDone(frame)`, as `extmem_frames_wait_ready`.
#[no_mangle]
pub unsafe extern "C" fn extmem_frames_wait_done(ch: *mut channel::extmem_channel, frame: u64) -> extmem_status {
    step("extmem_frames_wait_done", ch, |p| p.wait_done(Frame::new(frame)))
}
