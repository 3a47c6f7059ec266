//! The one error type of the crate: every variant says what was wrong and, where it can, how
//! to fix it.

use ash::vk;

/// Why an extmem operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Vulkan command returned an error.
    #[error("{call} failed: {result}")]
    Vulkan {
        /// The command.
        call: &'static str,
        /// What it returned.
        result: vk::Result,
    },
    /// The Vulkan loader could not be loaded.
    #[error("cannot load the Vulkan loader (libvulkan.so.1): {0}; install it (Debian: apt-get install libvulkan1)")]
    Loader(String),
    /// No usable Vulkan device.
    #[error("no usable Vulkan device: {0}")]
    NoDevice(String),
    /// The device or driver cannot do what was asked.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The extmem layer could not be found or enabled.
    #[error("extmem layer: {0}")]
    Layer(String),
    /// A description breaks a Vulkan valid-usage rule or the device's limits (named field).
    #[error("invalid description: {0}")]
    Invalid(String),
    /// An import was refused before the driver was asked, because it could not work.
    #[error("import refused: {0}")]
    Import(String),
    /// A message from the peer was malformed; any descriptors that came with it were closed.
    #[error("bad message from peer: {0}")]
    Protocol(String),
    /// A pool refused a handle or a hand-off: unknown, stale (released and reused) or forged
    /// handles, ranges outside a block, overlapping sub-allocations, blocks never sent.
    #[error("pool: {0}")]
    Pool(String),
    /// The peer closed the connection, died, or did not answer in time.
    #[error("peer: {0}")]
    Peer(String),
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Names the command of a failed Vulkan call.
pub(crate) trait VkResultExt<T> {
    fn vk(self, call: &'static str) -> Result<T>;
}

impl<T> VkResultExt<T> for std::result::Result<T, vk::Result> {
    fn vk(self, call: &'static str) -> Result<T> {
        self.map_err(|result| Error::Vulkan { call, result })
    }
}

/// Adds what was being done to an I/O error.
pub(crate) trait IoResultExt<T> {
    fn io(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<std::io::Error>> IoResultExt<T> for std::result::Result<T, E> {
    fn io(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Io { context: context(), source: e.into() })
    }
}
