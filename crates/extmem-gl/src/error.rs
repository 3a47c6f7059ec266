//! The one error type of the crate.

/// Why a GL operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libEGL could not be loaded (no GL driver installed).
    #[error("cannot load libEGL.so.1: {0}; install an EGL driver (Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)")]
    NoLibrary(String),
    /// An EGL call failed.
    #[error("{call} failed: {error}")]
    Egl {
        /// The call.
        call: &'static str,
        /// EGL's error.
        error: khronos_egl::Error,
    },
    /// The GL driver lacks an extension the operation needs.
    #[error("{renderer} lacks {extension}, which {needed_for} needs")]
    MissingExtension {
        /// `GL_RENDERER`.
        renderer: String,
        /// The extension.
        extension: &'static str,
        /// What it is needed for.
        needed_for: &'static str,
    },
    /// GL runs on another device or driver than the one that made the memory.
    #[error(
        "GL ({renderer}) runs on device {gl_device} with driver {gl_driver}, the memory comes from device {device} with driver {driver}; an opaque fd imports only where both match (pick the GL device with __EGL_VENDOR_LIBRARY_FILENAMES or the Vulkan device with EXTMEM_DEVICE)"
    )]
    OtherDevice {
        /// `GL_RENDERER`.
        renderer: String,
        /// GL's `GL_DEVICE_UUID_EXT`, hex.
        gl_device: String,
        /// GL's `GL_DRIVER_UUID_EXT`, hex.
        gl_driver: String,
        /// The descriptor's device UUID, hex.
        device: String,
        /// The descriptor's driver UUID, hex.
        driver: String,
    },
    /// The descriptor describes something GL cannot import.
    #[error("GL import refused: {0}")]
    Import(String),
    /// A GL call reported an error (`glGetError`) or a debug message of high severity.
    #[error("{call}: {detail}")]
    Gl {
        /// What was being done.
        call: &'static str,
        /// The GL error or message.
        detail: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Names the EGL call that failed.
pub(crate) trait EglResultExt<T> {
    fn egl(self, call: &'static str) -> Result<T>;
}

impl<T> EglResultExt<T> for std::result::Result<T, khronos_egl::Error> {
    fn egl(self, call: &'static str) -> Result<T> {
        self.map_err(|error| Error::Egl { call, error })
    }
}

/// 16 bytes as lower-case hex.
pub(crate) fn hex(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}
