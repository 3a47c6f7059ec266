//! The crate's one error type.

/// Why an extmem-wgpu operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// extmem refused or Vulkan failed.
    #[error(transparent)]
    Extmem(#[from] extmem::Error),
    /// The wgpu device does not run on Vulkan.
    #[error("the wgpu device is not on the Vulkan backend: request an adapter with wgpu::Backends::VULKAN")]
    NotVulkan,
    /// A format or usage that has no counterpart on the other side.
    #[error("{0}")]
    Mismatch(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
