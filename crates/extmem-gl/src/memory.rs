//! Shared memory imported into GL (GL_EXT_memory_object_fd): an image as a texture
//! (`glTexStorageMem2DEXT`), a buffer as a buffer object (`glBufferStorageMemEXT`).

use crate::context::Gl;
use crate::error::{Error, Result};
use crate::ext;
use extmem::gate::Checked;
use extmem::{vk, Descriptor, HandleType, ResourceDesc};
use glow::HasContext;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};

/// What the memory holds in GL.
#[derive(Clone, Copy, Debug)]
pub enum GlObject {
    /// A 2D texture (`GL_TEXTURE_2D`) on the image's memory.
    Texture(glow::Texture),
    /// A buffer object on the buffer's memory.
    Buffer(glow::Buffer),
}

/// A GL texture format of a Vulkan image format.
#[derive(Clone, Copy)]
struct Format {
    internal: u32,
    format: u32,
    bytes: usize,
}

fn gl_format(f: vk::Format) -> Result<Format> {
    Ok(match f {
        vk::Format::R8G8B8A8_UNORM => Format { internal: glow::RGBA8, format: glow::RGBA, bytes: 4 },
        vk::Format::R8_UNORM => Format { internal: glow::R8, format: glow::RED, bytes: 1 },
        other => {
            return Err(Error::Import(format!(
                "{other:?} images have no GL format here; share R8G8B8A8_UNORM or R8_UNORM images, or a buffer"
            )))
        }
    })
}

/// Memory from another API imported into GL, and the texture or buffer object on it. Deleted
/// (texture or buffer, then the memory object) on drop.
pub struct GlMemory<'a> {
    gl: &'a Gl,
    memory: u32,
    object: GlObject,
    desc: Descriptor,
    framebuffer: glow::Framebuffer,
}

impl<'a> GlMemory<'a> {
    /// Imports an opaque fd that `desc` describes. Checks before GL is asked: the handle type,
    /// the device and driver UUIDs against GL's, the resource (a single-layer 2D image of a
    /// format GL has here, or a buffer). On success GL owns `fd`; on failure it is closed.
    ///
    /// The descriptor passes extmem's import gate first ([`extmem::gate::check_foreign`]: its
    /// rules against GL's texture size, the resource inside the allocation, the fd's kind and,
    /// for a memfd, its seals and size).
    pub fn import(gl: &'a Gl, desc: &Descriptor, fd: OwnedFd) -> Result<GlMemory<'a>> {
        let checked = extmem::gate::check_foreign(desc, fd.as_fd(), &gl_limits(gl)).map_err(|e| match e {
            extmem::Error::Import(s) => Error::Import(s),
            other => Error::Import(other.to_string()),
        })?;
        Self::import_checked(gl, &checked, fd)
    }

    fn import_checked(gl: &'a Gl, checked: &Checked<Descriptor>, fd: OwnedFd) -> Result<GlMemory<'a>> {
        let desc = checked.get();
        if desc.handle_type != HandleType::OpaqueFd {
            return Err(Error::Import(format!(
                "GL_EXT_memory_object_fd imports opaque fds, not {} (share the memory with HandleType::OpaqueFd)",
                desc.handle_type
            )));
        }
        gl.check_uuids(&desc.device_uuid, &desc.driver_uuid)?;
        if !matches!(desc.resource, ResourceDesc::Image(_) | ResourceDesc::Buffer(_)) {
            return Err(Error::Import(format!("GL imports buffers and 2D images, not {:?}", desc.resource)));
        }
        if let ResourceDesc::Image(i) = desc.resource {
            gl_format(i.format)?;
            if i.extent.depth != 1 || i.array_layers != 1 {
                return Err(Error::Import("only single-layer 2D images import as GL_TEXTURE_2D here".into()));
            }
        }
        mesa_limits(gl, desc)?;
        let g = &gl.gl;
        // SAFETY (the closures): the current context.
        let object = match desc.resource {
            ResourceDesc::Image(_) => GlObject::Texture(create(gl, |g| unsafe { g.create_texture() })?),
            _ => GlObject::Buffer(create(gl, |g| unsafe { g.create_buffer() })?),
        };
        let framebuffer = match create(gl, |g| unsafe { g.create_framebuffer() }) {
            Ok(f) => f,
            Err(e) => {
                delete_object(g, object);
                return Err(e);
            }
        };
        // From here on, dropping `this` deletes whatever was made.
        let mut this = GlMemory { gl, memory: 0, object, desc: *desc, framebuffer };
        // SAFETY: the current context; the entry points were loaded for it.
        unsafe { (gl.mem.create_memory_objects)(1, &mut this.memory) };
        gl.check("glCreateMemoryObjectsEXT")?;
        let memory = this.memory;
        // SAFETY: the current context; a memory object this function created.
        unsafe {
            let dedicated = desc.dedicated as i32;
            (gl.mem.memory_object_parameteriv)(memory, ext::DEDICATED_MEMORY_OBJECT, &dedicated);
        }
        gl.check("glMemoryObjectParameterivEXT(GL_DEDICATED_MEMORY_OBJECT_EXT)")?;
        let raw = fd.into_raw_fd();
        // SAFETY: a fresh memory object and an open descriptor that GL owns if this succeeds.
        unsafe { (gl.mem.import_memory_fd)(memory, desc.allocation_size, ext::HANDLE_TYPE_OPAQUE_FD, raw) };
        if let Err(e) = gl.check("glImportMemoryFdEXT") {
            // SAFETY: the import failed, so the descriptor is still ours to close.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            return Err(e);
        }
        match desc.resource {
            ResourceDesc::Buffer(b) => {
                let GlObject::Buffer(buffer) = this.object else { unreachable!("made as a buffer above") };
                // SAFETY: the current context; the buffer and memory object are ours and the
                // range lies in the memory (the descriptor was checked when it was received).
                unsafe {
                    g.bind_buffer(glow::COPY_WRITE_BUFFER, Some(buffer));
                    (gl.mem.buffer_storage_mem)(glow::COPY_WRITE_BUFFER, b.size as isize, memory, desc.offset);
                    g.bind_buffer(glow::COPY_WRITE_BUFFER, None);
                }
                gl.check("glBufferStorageMemEXT")?;
            }
            ResourceDesc::Image(i) => {
                let format = gl_format(i.format)?;
                let GlObject::Texture(texture) = this.object else { unreachable!("made as a texture above") };
                let tiling = if i.tiling == vk::ImageTiling::LINEAR { ext::LINEAR_TILING } else { ext::OPTIMAL_TILING };
                // SAFETY: as above; the tiling is set before the storage, as the extension asks.
                unsafe {
                    g.bind_texture(glow::TEXTURE_2D, Some(texture));
                    g.tex_parameter_i32(glow::TEXTURE_2D, ext::TEXTURE_TILING, tiling as i32);
                    (gl.mem.tex_storage_mem_2d)(
                        glow::TEXTURE_2D,
                        i.mip_levels as i32,
                        format.internal,
                        i.extent.width as i32,
                        i.extent.height as i32,
                        memory,
                        desc.offset,
                    );
                    g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MIN_FILTER, glow::NEAREST as i32);
                    g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MAG_FILTER, glow::NEAREST as i32);
                    g.bind_texture(glow::TEXTURE_2D, None);
                }
                gl.check("glTexStorageMem2DEXT")?;
                // SAFETY: attaches level 0 of the texture this function made.
                unsafe {
                    g.bind_framebuffer(glow::FRAMEBUFFER, Some(this.framebuffer));
                    g.framebuffer_texture_2d(
                        glow::FRAMEBUFFER,
                        glow::COLOR_ATTACHMENT0,
                        glow::TEXTURE_2D,
                        Some(texture),
                        0,
                    );
                    let status = g.check_framebuffer_status(glow::FRAMEBUFFER);
                    g.bind_framebuffer(glow::FRAMEBUFFER, None);
                    if status != glow::FRAMEBUFFER_COMPLETE {
                        return Err(Error::Gl {
                            call: "glCheckFramebufferStatus",
                            detail: format!("the imported texture is not renderable: status {status:#x}"),
                        });
                    }
                }
            }
            other => return Err(Error::Import(format!("GL imports buffers and 2D images, not {other:?}"))),
        }
        Ok(this)
    }

    /// The texture or buffer object.
    pub fn object(&self) -> GlObject {
        self.object
    }

    /// The GL memory object.
    pub fn memory_object(&self) -> u32 {
        self.memory
    }

    /// The descriptor it was imported from.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// Bytes of the resource's data: a buffer's size, or an image's level 0 tightly packed.
    pub fn data_len(&self) -> usize {
        match self.desc.resource {
            ResourceDesc::Buffer(b) => b.size as usize,
            ResourceDesc::Image(i) => {
                let bytes = gl_format(i.format).map_or(0, |f| f.bytes);
                i.extent.width as usize * i.extent.height as usize * bytes
            }
            _ => 0, // refused by `import`
        }
    }

    /// Reads the data back through GL: a buffer with `glGetBufferSubData`, an image's level 0
    /// with `glReadPixels` from a framebuffer on the texture (rows tightly packed, row 0 first).
    pub fn read(&self) -> Result<Vec<u8>> {
        let g = &self.gl.gl;
        let mut out = vec![0u8; self.data_len()];
        match (self.object, self.desc.resource) {
            (GlObject::Buffer(b), _) => {
                // Through a GPU copy into a scratch buffer: NVIDIA's GL (580) answered
                // glGetBufferSubData on the shared buffer with its own earlier glBufferSubData
                // bytes, not what Vulkan wrote since (measured on an H200); a copy is GPU work,
                // ordered after the semaphore wait like the image path's draw and read.
                let scratch = self.scratch_buffer(glow::STREAM_READ)?;
                // SAFETY: the current context; both buffers hold `out.len()` bytes.
                unsafe {
                    g.bind_buffer(glow::COPY_READ_BUFFER, Some(b));
                    g.bind_buffer(glow::COPY_WRITE_BUFFER, Some(scratch));
                    g.copy_buffer_sub_data(glow::COPY_READ_BUFFER, glow::COPY_WRITE_BUFFER, 0, 0, out.len() as i32);
                    g.get_buffer_sub_data(glow::COPY_WRITE_BUFFER, 0, &mut out);
                    g.bind_buffer(glow::COPY_WRITE_BUFFER, None);
                    g.bind_buffer(glow::COPY_READ_BUFFER, None);
                    g.delete_buffer(scratch);
                }
                self.gl.check("glCopyBufferSubData + glGetBufferSubData")?;
            }
            (GlObject::Texture(_), ResourceDesc::Image(i)) => {
                let format = gl_format(i.format)?;
                // SAFETY: the current context; `out` holds width x height texels, packed.
                unsafe {
                    g.bind_framebuffer(glow::READ_FRAMEBUFFER, Some(self.framebuffer));
                    g.pixel_store_i32(glow::PACK_ALIGNMENT, 1);
                    g.read_pixels(
                        0,
                        0,
                        i.extent.width as i32,
                        i.extent.height as i32,
                        format.format,
                        glow::UNSIGNED_BYTE,
                        glow::PixelPackData::Slice(Some(&mut out)),
                    );
                    g.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
                }
                self.gl.check("glReadPixels")?;
            }
            (GlObject::Texture(_), _) => unreachable!("only images import as textures"),
        }
        Ok(out)
    }

    /// Writes `bytes` through GL: a buffer with `glBufferSubData`, an image by drawing a
    /// full-screen triangle into a framebuffer on the texture, each fragment fetching its texel
    /// from a texture holding `bytes`. Queued, not waited for: call [`Gl::finish`] (or signal
    /// a semaphore) before the other side reads.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() != self.data_len() {
            return Err(Error::Import(format!("a write of {} bytes into {} bytes", bytes.len(), self.data_len())));
        }
        match (self.object, self.desc.resource) {
            (GlObject::Buffer(b), _) => {
                let g = &self.gl.gl;
                // Uploaded into a scratch buffer and copied on the GPU, so that GL keeps no
                // copy of its own of the shared buffer's bytes (see `read`).
                let scratch = self.scratch_buffer(glow::STREAM_DRAW)?;
                // SAFETY: the current context; both buffers hold `bytes.len()` bytes.
                unsafe {
                    g.bind_buffer(glow::COPY_READ_BUFFER, Some(scratch));
                    g.buffer_sub_data_u8_slice(glow::COPY_READ_BUFFER, 0, bytes);
                    g.bind_buffer(glow::COPY_WRITE_BUFFER, Some(b));
                    g.copy_buffer_sub_data(glow::COPY_READ_BUFFER, glow::COPY_WRITE_BUFFER, 0, 0, bytes.len() as i32);
                    g.bind_buffer(glow::COPY_WRITE_BUFFER, None);
                    g.bind_buffer(glow::COPY_READ_BUFFER, None);
                    g.delete_buffer(scratch);
                }
                self.gl.check("glBufferSubData + glCopyBufferSubData")
            }
            (GlObject::Texture(_), ResourceDesc::Image(i)) => {
                let f = gl_format(i.format)?;
                crate::draw::copy_into(
                    &self.gl.gl,
                    &self.gl.draw,
                    self.framebuffer,
                    i.extent.width,
                    i.extent.height,
                    f.internal,
                    f.format,
                    bytes,
                )?;
                self.gl.check("drawing into the imported texture")
            }
            (GlObject::Texture(_), _) => unreachable!("only images import as textures"),
        }
    }
}

impl GlMemory<'_> {
    /// A GL-owned buffer of the resource's data size, for staging a read or a write.
    fn scratch_buffer(&self, usage: u32) -> Result<glow::Buffer> {
        let scratch = create(self.gl, |g| unsafe { g.create_buffer() })?;
        // SAFETY: the current context; a new buffer of ours.
        unsafe {
            let g = &self.gl.gl;
            g.bind_buffer(glow::COPY_WRITE_BUFFER, Some(scratch));
            g.buffer_data_size(glow::COPY_WRITE_BUFFER, self.data_len() as i32, usage);
            g.bind_buffer(glow::COPY_WRITE_BUFFER, None);
        }
        if let Err(e) = self.gl.check("glBufferData (scratch)") {
            // SAFETY: the buffer made above.
            unsafe { self.gl.gl.delete_buffer(scratch) };
            return Err(e);
        }
        Ok(scratch)
    }
}

impl Drop for GlMemory<'_> {
    fn drop(&mut self) {
        let g = &self.gl.gl;
        // SAFETY: objects this value made, on the context that made them.
        unsafe {
            g.delete_framebuffer(self.framebuffer);
            delete_object(g, self.object);
            if self.memory != 0 {
                (self.gl.mem.delete_memory_objects)(1, &self.memory);
            }
        }
        let _ = self.gl.check("deleting the imported memory");
    }
}

/// What Mesa's llvmpipe (22.3) cannot import, refused here with the reason instead of GL's
/// bare GL_OUT_OF_MEMORY: `llvmpipe_resource_from_memobj` ignores the offset, and gives a
/// buffer of N bytes memory only where the memory object holds N + 48 bytes (it over-allocates
/// buffers by (LP_RASTER_BLOCK_SIZE - 1) * 4 * sizeof(float) for its rasteriser).
/// The rules' limits in GL's terms: its largest texture; no allocation limit beyond the wire's.
fn gl_limits(gl: &Gl) -> extmem::rules::DeviceLimits {
    // SAFETY: the current context; a plain query.
    let max = unsafe { gl.gl.get_parameter_i32(glow::MAX_TEXTURE_SIZE) }.max(1) as u32;
    extmem::rules::DeviceLimits {
        max_image_dimension_2d: max,
        max_framebuffer_width: max,
        max_framebuffer_height: max,
        ..extmem::gate::foreign_limits(extmem::transport::message::MAX_ALLOCATION)
    }
}

fn mesa_limits(gl: &Gl, desc: &Descriptor) -> Result<()> {
    if !gl.renderer().starts_with("llvmpipe") {
        return Ok(());
    }
    if desc.offset != 0 {
        return Err(Error::Import(format!(
            "llvmpipe ignores the offset of memory-object imports; this resource starts at {} (share a dedicated allocation)",
            desc.offset
        )));
    }
    if let ResourceDesc::Buffer(b) = desc.resource {
        if desc.allocation_size < b.size + LLVMPIPE_BUFFER_TAIL {
            return Err(Error::Import(format!(
                "llvmpipe imports a {}-byte buffer only from memory at least {LLVMPIPE_BUFFER_TAIL} bytes larger than it, and this memory holds {} bytes (allocate more than the buffer needs, share an image, or use zink: GALLIUM_DRIVER=zink)",
                b.size, desc.allocation_size
            )));
        }
    }
    Ok(())
}

/// The bytes llvmpipe adds to a buffer: (LP_RASTER_BLOCK_SIZE - 1) * 4 * sizeof(float).
const LLVMPIPE_BUFFER_TAIL: u64 = 3 * 4 * 4;

/// Deletes a texture or buffer object.
fn delete_object(g: &glow::Context, object: GlObject) {
    // SAFETY: an object made on the current context, no longer used.
    unsafe {
        match object {
            GlObject::Texture(t) => g.delete_texture(t),
            GlObject::Buffer(b) => g.delete_buffer(b),
        }
    }
}

/// A new GL object, or the error GL gave.
fn create<T>(gl: &Gl, make: impl FnOnce(&glow::Context) -> std::result::Result<T, String>) -> Result<T> {
    make(&gl.gl).map_err(|detail| Error::Gl { call: "creating a GL object", detail })
}
