//! The OpenGL consumer of `extmem demo --consumer gl`: a process with no Vulkan at all. It makes a GL
//! context through EGL's surfaceless platform, imports the shared image as a texture (or the
//! buffer as a buffer object) after checking GL's device and driver UUIDs against the
//! descriptor's, checks every byte of every frame, writes its own pattern (a framebuffer draw, or
//! `glBufferSubData`), and hands the frame back.
//!
//! Synchronisation: where the producer shares a timeline semaphore and GL has
//! GL_EXT_semaphore_fd and GL_NV_timeline_semaphore (NVIDIA), GL waits for and signals it on the
//! GPU (`glWaitSemaphoreEXT` / `glSignalSemaphoreEXT`); elsewhere (Mesa's llvmpipe and zink) the
//! producer's fence completes before FrameReady and `glFinish` completes GL's work before
//! FrameDone.

use crate::peer::verdict::fail;
use crate::support::error::Result;
use crate::support::timing::step;
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::pattern::{self, writeback_seed};
use extmem::transport::{Channel, Message};
use extmem_gl::{Gl, GlMemory, GlObject, GlSemaphore};
use std::process::ExitCode;

/// Runs the GL consumer on `channel` until the producer's Bye.
pub fn run(channel: &Channel, start: u64, quiet: bool) -> Result<ExitCode> {
    let say = |text: std::fmt::Arguments<'_>| {
        if !quiet {
            step(start, text)
        }
    };
    let gl = match Gl::new() {
        Ok(gl) => gl,
        Err(e) => return fail(channel, format!("OpenGL: {e}")),
    };
    say(format_args!(
        "OpenGL {} on {} through EGL surfaceless (no window); GL_EXT_semaphore_fd: {}",
        gl.version(),
        gl.renderer(),
        if gl.has_timeline_semaphores() {
            "yes, with GL_NV_timeline_semaphore"
        } else if gl.has_semaphores() {
            "yes (binary only)"
        } else {
            "no"
        }
    ));
    let mut memory: Option<GlMemory<'_>> = None;
    let mut semaphore: Option<GlSemaphore<'_>> = None;
    loop {
        let (message, mut fds) = channel.recv()?;
        match message {
            Message::Share(desc) => {
                let fd = fds.pop().expect("checked by recv");
                let imported = match GlMemory::import(&gl, &desc, fd) {
                    Ok(m) => m,
                    Err(e) => return fail(channel, e.to_string()),
                };
                say(format_args!(
                    "device and driver UUIDs match; imported {} bytes with glImportMemoryFdEXT as {}",
                    desc.allocation_size,
                    match imported.object() {
                        GlObject::Texture(_) => "a texture (glTexStorageMem2DEXT)",
                        GlObject::Buffer(_) => "a buffer object (glBufferStorageMemEXT)",
                    }
                ));
                memory = Some(imported);
                channel
                    .send(&Message::Verdict { ok: true, detail: format!("imported into {}", gl.renderer()) }, &[])?;
            }
            Message::ShareSemaphore => {
                let fd = fds.pop().expect("checked by recv");
                match GlSemaphore::import_timeline(&gl, fd) {
                    Ok(s) => semaphore = Some(s),
                    Err(e) => return fail(channel, e.to_string()),
                }
                say(format_args!(
                    "synchronisation: the producer's timeline semaphore in GL (GL_EXT_semaphore_fd + GL_NV_timeline_semaphore), GPU waits"
                ));
            }
            Message::FrameReady { frame } => {
                let Some(m) = memory.as_ref() else { return fail(channel, "FrameReady before Share".into()) };
                match frame_round(&gl, m, semaphore.as_ref(), frame) {
                    Ok(None) => {}
                    Ok(Some(mismatch)) => return fail(channel, mismatch),
                    Err(e) => return fail(channel, format!("frame {frame}: {e}")),
                }
                if frame == 0 {
                    say(format_args!(
                        "frame 0: all {} bytes match the pattern (read through GL); wrote its own pattern back ({}), then {}",
                        m.data_len(),
                        match m.object() {
                            GlObject::Texture(_) => "a framebuffer draw",
                            GlObject::Buffer(_) => "glBufferSubData",
                        },
                        if semaphore.is_some() {
                            "signalled the semaphore"
                        } else {
                            "glFinish (synchronisation: glFinish here, Vulkan fences on the producer's side)"
                        }
                    ));
                }
                FrameProtocol::new(channel, Role::Consumer).signal_done(Frame::new(frame))?;
            }
            Message::Bye => break,
            other => return fail(channel, format!("unexpected {}", other.name())),
        }
    }
    drop(semaphore);
    drop(memory);
    if let Err(e) = gl.check("the end of the demo") {
        eprintln!("[consumer] FAIL: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// One frame: wait (semaphore), read and check, write back, signal or finish. `Some(text)` when
/// a byte differs.
fn frame_round(
    gl: &Gl,
    memory: &GlMemory<'_>,
    semaphore: Option<&GlSemaphore<'_>>,
    frame: u64,
) -> extmem_gl::Result<Option<String>> {
    if let Some(s) = semaphore {
        s.wait(memory, Frame::new(frame).ready())?;
    }
    let data = memory.read()?;
    if let Some((at, seen, want)) = pattern::first_mismatch(&data, frame) {
        return Ok(Some(format!("frame {frame}: byte {at} is {seen:#04x}, expected {want:#04x}")));
    }
    memory.write(&pattern::fill(data.len(), writeback_seed(frame)))?;
    match semaphore {
        Some(s) => s.signal(memory, Frame::new(frame).done())?,
        None => gl.finish()?,
    }
    Ok(None)
}
