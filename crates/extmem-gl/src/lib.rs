//! OpenGL as a consumer of extmem's shared memory, through EGL without a window.
//!
//! - [`Gl`]: libEGL loaded at run time (a machine without GL builds and runs everything else),
//!   EGL's surfaceless platform, a GL 4.5 core debug context, its `GL_RENDERER`, and its device
//!   and driver UUIDs (GL_EXT_memory_object).
//! - [`GlMemory`]: an opaque fd imported with GL_EXT_memory_object_fd after the UUID check: an
//!   image as a texture (`glTexStorageMem2DEXT`), a buffer as a buffer object
//!   (`glBufferStorageMemEXT`); read back and written through GL.
//! - [`GlSemaphore`]: a Vulkan semaphore in GL (GL_EXT_semaphore_fd; a timeline one through
//!   GL_NV_timeline_semaphore), where the driver has it (NVIDIA's does; Mesa 22.3's llvmpipe and
//!   zink on lavapipe do not: there, `glFinish` on this side and fences on the Vulkan side order
//!   the work, with the socket's frame messages).
//!
//! Every GL call is followed by a check of `glGetError` and the driver's debug messages of
//! type error; either fails the call.
//!
//! ```no_run
//! fn consume(channel: &extmem::transport::Channel) -> Result<(), Box<dyn std::error::Error>> {
//!     let (desc, fd) = channel.recv_share()?;                 // from a Vulkan producer
//!     let gl = extmem_gl::Gl::new()?;                         // surfaceless EGL, GL 4.5 core
//!     let memory = extmem_gl::GlMemory::import(&gl, &desc, fd)?; // UUIDs checked first
//!     let bytes = memory.read()?;                             // glReadPixels / glGetBufferSubData
//!     memory.write(&bytes)?;                                  // a framebuffer draw / glBufferSubData
//!     gl.finish()?;                                           // before the other side reads
//!     Ok(())
//! }
//! ```

mod context;
mod draw;
mod error;
mod ext;
mod memory;
mod semaphore;

pub use context::Gl;
pub use error::{Error, Result};
pub use memory::{GlMemory, GlObject};
pub use semaphore::GlSemaphore;
