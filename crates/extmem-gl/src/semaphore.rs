//! Vulkan semaphores in GL (GL_EXT_semaphore_fd, and GL_NV_timeline_semaphore for timeline
//! ones): GL's work waits for and signals a semaphore that Vulkan exported as an opaque fd, so
//! the GPU orders the two APIs' work.

use crate::context::Gl;
use crate::error::{Error, Result};
use crate::ext;
use crate::memory::{GlMemory, GlObject};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// An imported semaphore, deleted on drop.
pub struct GlSemaphore<'a> {
    gl: &'a Gl,
    id: u32,
    timeline: bool,
}

impl<'a> GlSemaphore<'a> {
    /// Imports a binary semaphore's opaque fd. On success GL owns `fd`; on failure it is closed.
    pub fn import(gl: &'a Gl, fd: OwnedFd) -> Result<GlSemaphore<'a>> {
        Self::import_as(gl, fd, false)
    }

    /// Imports a timeline semaphore's opaque fd (GL_NV_timeline_semaphore).
    pub fn import_timeline(gl: &'a Gl, fd: OwnedFd) -> Result<GlSemaphore<'a>> {
        Self::import_as(gl, fd, true)
    }

    fn import_as(gl: &'a Gl, fd: OwnedFd, timeline: bool) -> Result<GlSemaphore<'a>> {
        let fns = gl.sem.as_ref().ok_or_else(|| Error::MissingExtension {
            renderer: gl.renderer().into(),
            extension: "GL_EXT_semaphore_fd",
            needed_for: "ordering GL's work after Vulkan's on the GPU",
        })?;
        let mut id = 0;
        if timeline {
            let t = gl.timeline.as_ref().ok_or_else(|| Error::MissingExtension {
                renderer: gl.renderer().into(),
                extension: "GL_NV_timeline_semaphore",
                needed_for: "a Vulkan timeline semaphore in GL (use host synchronisation instead: --sync host)",
            })?;
            // SAFETY: the current context; the type is set before the import, as the
            // extension requires.
            unsafe {
                (t.create_semaphores)(1, &mut id);
                (t.semaphore_parameteriv)(id, ext::SEMAPHORE_TYPE, &ext::SEMAPHORE_TYPE_TIMELINE);
            }
            gl.check("glCreateSemaphoresNV (timeline)")?;
        } else {
            // SAFETY: the current context; the entry points were loaded for it.
            unsafe { (fns.gen_semaphores)(1, &mut id) };
            gl.check("glGenSemaphoresEXT")?;
        }
        let this = GlSemaphore { gl, id, timeline };
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

    /// GL's later work waits for the semaphore (a timeline one: for `value`); `memory` is
    /// acquired in `GL_LAYOUT_GENERAL_EXT` (the layout the Vulkan side released it in).
    pub fn wait(&self, memory: &GlMemory<'_>, value: u64) -> Result<()> {
        self.op(memory, true, value)
    }

    /// Signals the semaphore (a timeline one: to `value`) after GL's work so far; `memory` is
    /// released in `GL_LAYOUT_GENERAL_EXT`. Flushes, so the signal reaches the GPU.
    pub fn signal(&self, memory: &GlMemory<'_>, value: u64) -> Result<()> {
        self.op(memory, false, value)?;
        // SAFETY: the current context.
        unsafe { glow::HasContext::flush(&self.gl.gl) };
        self.gl.check("glFlush")
    }

    fn op(&self, memory: &GlMemory<'_>, wait: bool, value: u64) -> Result<()> {
        let fns = self.gl.sem.as_ref().expect("checked at import");
        if self.timeline {
            // SAFETY: the current context; a timeline semaphore this value imported.
            unsafe { (fns.semaphore_parameterui64v)(self.id, ext::TIMELINE_SEMAPHORE_VALUE, &value) };
            self.gl.check("glSemaphoreParameterui64vEXT(GL_TIMELINE_SEMAPHORE_VALUE_NV)")?;
        }
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
