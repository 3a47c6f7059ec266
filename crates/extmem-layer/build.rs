//! Writes the layer's manifests next to the library cargo builds (`target/<profile>/`):
//! - `VkLayer_extmem.json`, the explicit layer (`VK_ADD_LAYER_PATH=target/<profile>`);
//! - `implicit/vulkan/implicit_layer.d/VkLayer_extmem.json`, the same layer as an implicit one,
//!   active where `EXTMEM_ENABLE_NV=1` and `implicit` is in `XDG_DATA_DIRS` (`extmem run` sets
//!   both). An implicit layer's instance extensions appear in the global extension list, which
//!   is what an unmodified application checks. It lists no device extension: the loader would
//!   add it to the device's own list, where the layer could no longer tell the driver's from its
//!   own; the layer's `vkEnumerateDeviceExtensionProperties` advertises it instead.
//! - `package/VkLayer_extmem.json`, the implicit manifest as installed (the Debian package and
//!   `scripts/install.sh`): its `library_path` is the bare file name, which the loader hands to
//!   the dynamic linker, so it resolves from the system's library folders wherever they are.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=manifest/VkLayer_extmem.json.in");
    println!("cargo:rerun-if-changed=manifest/VkLayer_extmem_implicit.json.in");
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let file = match os.as_str() {
        "windows" => "VkLayer_extmem.dll",
        "macos" => "libVkLayer_extmem.dylib",
        _ => "libVkLayer_extmem.so",
    };
    // The library's SONAME is its file name, as Mesa's layers have (a layer is loaded by that
    // name from the manifest, never linked against): the Debian package installs it in the
    // multiarch library folder, where a shared library without a SONAME is an error.
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{file}");
    }
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out: three levels up is the folder that
    // receives the cdylib.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let Some(profile_dir) = out_dir.ancestors().nth(3) else { return };
    let write = |template: &str, library: &str, to: PathBuf| {
        let text = std::fs::read_to_string(template).expect("manifest template");
        std::fs::create_dir_all(to.parent().expect("a folder")).expect("manifest folder");
        std::fs::write(to, text.replace("@LIBRARY_PATH@", library)).expect("write manifest");
    };
    write("manifest/VkLayer_extmem.json.in", &format!("./{file}"), profile_dir.join("VkLayer_extmem.json"));
    write(
        "manifest/VkLayer_extmem_implicit.json.in",
        &format!("../../../{file}"),
        profile_dir.join("implicit/vulkan/implicit_layer.d/VkLayer_extmem.json"),
    );
    write("manifest/VkLayer_extmem_implicit.json.in", file, profile_dir.join("package/VkLayer_extmem.json"));
}
