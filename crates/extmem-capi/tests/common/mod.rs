//! What the integration tests share: where things are, and a fresh build of the library.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// This crate's folder.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/debug (or the profile's folder): the tests run from its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The profile's name (the folder's).
pub fn profile() -> String {
    profile_dir().file_name().expect("a profile folder").to_string_lossy().into_owned()
}

/// Builds the library and `extmem` (the CLI, for `extmem peer`) in this target folder, once
/// per test process: `cargo test` does not rebuild a cdylib for the tests of its own crate.
pub fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = crate_dir().join("../..");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(&root).args(["build", "-q", "-p", "extmem-capi", "-p", "extmem-cli"]);
        if profile() == "release" {
            cmd.arg("--release");
        }
        let s = cmd.status().expect("cargo build");
        assert!(s.success(), "building extmem-capi and extmem-cli");
    });
}

/// A command's status and output, for assertion messages.
pub fn show(what: &str, o: &Output) -> String {
    format!("--- {what}: {}\n{}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The `NEEDED` entries of an ELF file.
pub fn needed(path: &Path) -> Vec<String> {
    let o = Command::new("readelf").arg("-d").arg(path).output().expect("readelf");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).map(|s| s.trim_end_matches(']').to_owned()))
        .collect()
}
