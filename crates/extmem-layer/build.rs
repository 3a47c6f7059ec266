//! Writes the layer's manifest next to the library cargo builds (`target/<profile>/`), so
//! that `VK_ADD_LAYER_PATH=target/<profile>` finds the layer right after `cargo build`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=manifest/VkLayer_extmem.json.in");
    let template = std::fs::read_to_string("manifest/VkLayer_extmem.json.in").expect("manifest template");
    let library = format!(
        "./{}VkLayer_extmem{}",
        std::env::var("CARGO_CFG_TARGET_OS").map_or("lib", |os| if os == "windows" { "" } else { "lib" }),
        match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
            Ok("windows") => ".dll",
            Ok("macos") => ".dylib",
            _ => ".so",
        }
    );
    let manifest = template.replace("@LIBRARY_PATH@", &library);
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out: three levels up is the folder that
    // receives the cdylib.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        std::fs::write(profile_dir.join("VkLayer_extmem.json"), manifest).expect("write manifest");
    }
}
