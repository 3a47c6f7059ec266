//! Finding the extmem layer and pointing the Vulkan loader at it.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// The layer's name.
pub const LAYER_NAME: &CStr = c"VK_LAYER_EXTMEM_external_memory";
/// The layer's manifest file name.
pub const MANIFEST: &str = "VkLayer_extmem.json";

/// The folder that holds the layer's manifest: `$EXTMEM_LAYER_DIR`, else the running
/// executable's folder or one above it (a cargo build puts the manifest in
/// `target/<profile>/`, beside the `extmem` binary and above the test binaries). `None` when
/// neither has it; the loader may still find an installed layer.
pub fn locate() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EXTMEM_LAYER_DIR") {
        return Some(dir.into());
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().skip(1).take(3).find(|d| d.join(MANIFEST).is_file()).map(Path::to_path_buf)
}

/// The environment variable that switches the implicit manifest on.
pub const IMPLICIT_ENABLE_ENV: &str = "EXTMEM_ENABLE_NV";

/// The folder to put first in `XDG_DATA_DIRS` so that the loader finds the layer's implicit
/// manifest (`<dir>/implicit/vulkan/implicit_layer.d/`), which cargo builds beside the library.
pub fn implicit_data_dir(dir: &Path) -> PathBuf {
    dir.join("implicit")
}

/// `XDG_DATA_DIRS` with the implicit manifest's folder put first (the specification's default
/// `/usr/local/share:/usr/share` kept when the variable is unset).
pub fn implicit_data_dirs_value(dir: &Path) -> std::ffi::OsString {
    let mut value = implicit_data_dir(dir).into_os_string();
    value.push(":");
    match std::env::var_os("XDG_DATA_DIRS").filter(|v| !v.is_empty()) {
        Some(old) => value.push(old),
        None => value.push("/usr/local/share:/usr/share"),
    }
    value
}

/// `VK_ADD_LAYER_PATH` with `dir` put first.
pub fn add_layer_path_value(dir: &Path) -> std::ffi::OsString {
    let mut value = dir.as_os_str().to_owned();
    if let Some(old) = std::env::var_os("VK_ADD_LAYER_PATH").filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(old);
    }
    value
}

/// Makes the loader of this process see the layer found by [`locate`] (it is enabled per
/// instance by [`crate::Context`]). Returns the folder, or `None` when none was found.
///
/// # Safety
/// Changes the environment: call it before this process starts threads or loads Vulkan
/// (at the top of `main`, say).
pub unsafe fn add_to_loader_path() -> Option<PathBuf> {
    let dir = locate()?;
    // SAFETY: the caller promises no other thread reads the environment now.
    unsafe { std::env::set_var("VK_ADD_LAYER_PATH", add_layer_path_value(&dir)) };
    Some(dir)
}
