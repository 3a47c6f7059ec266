//! Vulkan semaphores in GL (GL_EXT_semaphore_fd): GL's work waits for and signals a binary
//! semaphore that Vulkan exported as an opaque fd, so the GPU orders the two APIs' work.

use crate::context::Gl;
use crate::error::{Error, Result};
use crate::ext;
use crate::memory::{GlMemory, GlObject};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// An imported semaphore, deleted on drop.
pub struct GlSemaphore<'a> {
    gl: &'a Gl,
    id: u32,
}

impl<'a> GlSemaphore<'a> {
    /// Imports a binary semaphore's opaque fd. On success GL owns `fd`; on failure it is closed.
    pub fn import(gl: &'a Gl, fd: OwnedFd) -> Result<GlSemaphore<'a>> {
        let fns = gl.sem.as_ref().ok_or_else(|| Error::MissingExtension {
            renderer: gl.renderer().into(),
            extension: "GL_EXT_semaphore_fd",
            needed_for: "ordering GL's work after Vulkan's on the GPU",
        })?;
        let mut id = 0;
        // SAFETY: the current context; the entry points were loaded for it.
        unsafe { (fns.gen_semaphores)(1, &mut id) };
        gl.check("glGenSemaphoresEXT")?;
        let this = GlSemaphore { gl, id };
        let raw = fd.into_raw_fd();
        // SAFETY: a fresh semaphore and an open descriptor that GL owns if this succeeds.
        unsafe { (fns.import_semaphore_fd)(id, ext::HANDLE_TYPE_OPAQUE_FD, raw) };
        if let Err(e) = gl.check("glImportSemaphoreFdEXT") {
            // SAFETY: the import failed, so the descriptor is still ours to close.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            return Err(e);
        }
        Ok(this)
    }

    /// GL's later work waits for the semaphore; `memory` is acquired in `GL_LAYOUT_GENERAL_EXT`
    /// (the layout the Vulkan side released it in).
    pub fn wait(&self, memory: &GlMemory<'_>) -> Result<()> {
        self.op(memory, true)
    }

    /// Signals the semaphore after GL's work so far; `memory` is released in
    /// `GL_LAYOUT_GENERAL_EXT`. Flushes, so the signal reaches the GPU.
    pub fn signal(&self, memory: &GlMemory<'_>) -> Result<()> {
        self.op(memory, false)?;
        // SAFETY: the current context.
        unsafe { glow::HasContext::flush(&self.gl.gl) };
        self.gl.check("glFlush")
    }

    fn op(&self, memory: &GlMemory<'_>, wait: bool) -> Result<()> {
        let fns = self.gl.sem.as_ref().expect("checked at import");
        let layout = ext::LAYOUT_GENERAL;
        let (buffers, textures): (Vec<u32>, Vec<u32>) = match memory.object() {
            GlObject::Buffer(b) => (vec![b.0.get()], vec![]),
            GlObject::Texture(t) => (vec![], vec![t.0.get()]),
        };
        let layouts = vec![layout; textures.len()];
        let f = if wait { fns.wait_semaphore } else { fns.signal_semaphore };
        // SAFETY: the current context; the arrays hold the counts passed.
        unsafe {
            f(
                self.id,
                buffers.len() as u32,
                buffers.as_ptr(),
                textures.len() as u32,
                textures.as_ptr(),
                layouts.as_ptr(),
            )
        };
        self.gl.check(if wait { "glWaitSemaphoreEXT" } else { "glSignalSemaphoreEXT" })
    }
}

impl Drop for GlSemaphore<'_> {
    fn drop(&mut self) {
        if let Some(fns) = &self.gl.sem {
            // SAFETY: a semaphore this value made, on its context.
            unsafe { (fns.delete_semaphores)(1, &self.id) };
        }
    }
}
