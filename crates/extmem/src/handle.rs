//! External memory handle types, as the library names them.

use ash::vk;
use serde::Serialize;

/// How memory leaves and enters a Vulkan device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HandleType {
    /// An opaque POSIX file descriptor (`VK_KHR_external_memory_fd`): only the same driver on
    /// the same device (equal device and driver UUIDs) can import it. CUDA can.
    OpaqueFd,
    /// A Linux dma-buf (`VK_EXT_external_memory_dma_buf`): other drivers, video and display APIs.
    DmaBuf,
    /// Host memory (`VK_EXT_external_memory_host`): a memfd that each process maps and imports
    /// into its device by pointer (see [`crate::host`]). Buffers only; crosses devices and
    /// drivers, since no UUID has to match.
    HostAllocation,
}

impl HandleType {
    /// Every handle type, in a stable order.
    pub const ALL: [HandleType; 3] = [HandleType::OpaqueFd, HandleType::DmaBuf, HandleType::HostAllocation];

    /// The core Vulkan bit.
    pub fn to_vk(self) -> vk::ExternalMemoryHandleTypeFlags {
        match self {
            HandleType::OpaqueFd => vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD,
            HandleType::DmaBuf => vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
            HandleType::HostAllocation => vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT,
        }
    }

    /// The handle type of exactly one core bit.
    pub fn from_vk(bits: vk::ExternalMemoryHandleTypeFlags) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.to_vk() == bits)
    }

    /// The handles of this type that `bits` contains.
    pub fn all_in(bits: vk::ExternalMemoryHandleTypeFlags) -> Vec<Self> {
        Self::ALL.into_iter().filter(|h| bits.contains(h.to_vk())).collect()
    }

    /// A short name, as the command line prints it.
    pub fn name(self) -> &'static str {
        match self {
            HandleType::OpaqueFd => "opaque-fd",
            HandleType::DmaBuf => "dma-buf",
            HandleType::HostAllocation => "host-allocation",
        }
    }

    /// The device extension the handle type needs.
    pub fn extension(self) -> &'static std::ffi::CStr {
        match self {
            HandleType::OpaqueFd => ash::khr::external_memory_fd::NAME,
            HandleType::DmaBuf => ash::ext::external_memory_dma_buf::NAME,
            HandleType::HostAllocation => ash::ext::external_memory_host::NAME,
        }
    }
}

impl std::fmt::Display for HandleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
