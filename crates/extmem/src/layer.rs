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

/// Where `extmem run` takes the layer from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSource {
    /// A build's folder ([`locate`]): the library, the explicit manifest and `implicit/`.
    Folder(PathBuf),
    /// An installed implicit manifest the loader finds by itself ([`installed_manifest`]).
    Installed(PathBuf),
}

/// The layer `extmem run` uses: the one beside the binary or in `$EXTMEM_LAYER_DIR`, else the
/// installed one; `None` when there is neither.
pub fn find() -> Option<LayerSource> {
    locate().map(LayerSource::Folder).or_else(|| installed_manifest().map(LayerSource::Installed))
}

/// The layer's implicit manifest where the loader looks for installed layers (the Vulkan
/// loader's search path on Linux: `$XDG_CONFIG_HOME`, `$XDG_CONFIG_DIRS` (default `/etc/xdg`),
/// `/etc`, `$XDG_DATA_HOME` (default `~/.local/share`), `$XDG_DATA_DIRS` (default
/// `/usr/local/share:/usr/share`), each followed by `vulkan/implicit_layer.d`).
pub fn installed_manifest() -> Option<PathBuf> {
    let var = |name: &str, default: &str| -> Vec<PathBuf> {
        let value = std::env::var_os(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.into());
        std::env::split_paths(&value).collect()
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".config"))),
    );
    dirs.extend(var("XDG_CONFIG_DIRS", "/etc/xdg"));
    dirs.push("/etc".into());
    dirs.extend(
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".local/share"))),
    );
    dirs.extend(var("XDG_DATA_DIRS", "/usr/local/share:/usr/share"));
    dirs.into_iter().map(|d| d.join("vulkan/implicit_layer.d").join(MANIFEST)).find(|m| m.is_file())
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
