//! Translation between the NV and the core (KHR) external-memory bit sets.
//!
//! The two enumerations reuse the same numbers for different handle types (NV's 0x1 is
//! OPAQUE_WIN32, core's 0x1 is OPAQUE_FD), so every bit goes through the table below; a bit
//! is never copied across.

use ash::vk;

type Nv = vk::ExternalMemoryHandleTypeFlagsNV;
type Khr = vk::ExternalMemoryHandleTypeFlags;

/// Which core handle type backs each NV handle type on this platform.
///
/// On Linux no Win32 or D3D11 handle exists: both opaque Win32 kinds are backed by an opaque
/// POSIX file descriptor, exported with `vkGetMemoryFdKHR`. D3D11 kinds have no backing.
#[cfg(not(windows))]
const BACKING: &[(Nv, Khr)] = &[(Nv::OPAQUE_WIN32, Khr::OPAQUE_FD), (Nv::OPAQUE_WIN32_KMT, Khr::OPAQUE_FD)];

/// On Windows every NV handle type has its own core equivalent.
#[cfg(windows)]
const BACKING: &[(Nv, Khr)] = &[
    (Nv::OPAQUE_WIN32, Khr::OPAQUE_WIN32),
    (Nv::OPAQUE_WIN32_KMT, Khr::OPAQUE_WIN32_KMT),
    (Nv::D3D11_IMAGE, Khr::D3D11_TEXTURE),
    (Nv::D3D11_IMAGE_KMT, Khr::D3D11_TEXTURE_KMT),
];

/// The handle type of resources the layer marks external (`marking`): the
/// backing of NV's opaque handles.
#[cfg(not(windows))]
pub const MARK: Khr = Khr::OPAQUE_FD;
/// The handle type of resources the layer marks external: the backing of NV's opaque handles.
#[cfg(windows)]
pub const MARK: Khr = Khr::OPAQUE_WIN32;

/// The device extension whose export command serves the backing handle types.
#[cfg(not(windows))]
pub const BACKING_EXTENSION: &std::ffi::CStr = ash::khr::external_memory_fd::NAME;
/// The device extension whose export command serves the backing handle types.
#[cfg(windows)]
pub const BACKING_EXTENSION: &std::ffi::CStr = ash::khr::external_memory_win32::NAME;

/// The core handle types backing `nv`, or `None` when a bit of `nv` has no backing here
/// (undefined bits, and D3D11 kinds outside Windows).
pub fn nv_to_khr(nv: Nv) -> Option<Khr> {
    let mut khr = Khr::empty();
    let mut covered = Nv::empty();
    for &(n, k) in BACKING {
        if nv.contains(n) {
            khr |= k;
            covered |= n;
        }
    }
    (covered == nv).then_some(khr)
}

/// Every NV handle type whose backing is among `khr`.
pub fn khr_to_nv(khr: Khr) -> Nv {
    BACKING.iter().filter(|(_, k)| khr.contains(*k)).fold(Nv::empty(), |acc, (n, _)| acc | *n)
}

/// Core feature bits to NV feature bits (equal numbers today, translated by name anyway).
pub fn features_to_nv(f: vk::ExternalMemoryFeatureFlags) -> vk::ExternalMemoryFeatureFlagsNV {
    use vk::ExternalMemoryFeatureFlags as K;
    use vk::ExternalMemoryFeatureFlagsNV as N;
    [(K::DEDICATED_ONLY, N::DEDICATED_ONLY), (K::EXPORTABLE, N::EXPORTABLE), (K::IMPORTABLE, N::IMPORTABLE)]
        .into_iter()
        .filter(|(k, _)| f.contains(*k))
        .fold(N::empty(), |acc, (_, n)| acc | n)
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;

    #[test]
    fn opaque_win32_kinds_are_backed_by_opaque_fd() {
        assert_eq!(nv_to_khr(Nv::OPAQUE_WIN32), Some(Khr::OPAQUE_FD));
        assert_eq!(nv_to_khr(Nv::OPAQUE_WIN32_KMT), Some(Khr::OPAQUE_FD));
        assert_eq!(nv_to_khr(Nv::OPAQUE_WIN32 | Nv::OPAQUE_WIN32_KMT), Some(Khr::OPAQUE_FD));
        assert_eq!(nv_to_khr(Nv::empty()), Some(Khr::empty()));
    }

    #[test]
    fn unbacked_and_undefined_bits_are_refused() {
        assert_eq!(nv_to_khr(Nv::D3D11_IMAGE), None);
        assert_eq!(nv_to_khr(Nv::D3D11_IMAGE_KMT), None);
        assert_eq!(nv_to_khr(Nv::OPAQUE_WIN32 | Nv::from_raw(0x100)), None);
    }

    #[test]
    fn reverse_mapping_never_copies_numbers() {
        // Core OPAQUE_FD is 0x1, the same number as NV OPAQUE_WIN32: the mapping must come from
        // the table, and core OPAQUE_WIN32 (0x2) must not turn into NV OPAQUE_WIN32_KMT (0x2).
        assert_eq!(khr_to_nv(Khr::OPAQUE_FD), Nv::OPAQUE_WIN32 | Nv::OPAQUE_WIN32_KMT);
        assert_eq!(khr_to_nv(Khr::OPAQUE_WIN32), Nv::empty());
        assert_eq!(khr_to_nv(Khr::DMA_BUF_EXT | Khr::HOST_ALLOCATION_EXT), Nv::empty());
    }

    #[test]
    fn features_translate_bit_by_bit() {
        use vk::ExternalMemoryFeatureFlags as K;
        use vk::ExternalMemoryFeatureFlagsNV as N;
        assert_eq!(features_to_nv(K::EXPORTABLE | K::IMPORTABLE), N::EXPORTABLE | N::IMPORTABLE);
        assert_eq!(features_to_nv(K::DEDICATED_ONLY), N::DEDICATED_ONLY);
        assert_eq!(features_to_nv(K::from_raw(0x80)), N::empty());
    }
}
