//! The C program in `tests/c/nv_client.c`, written only against the Vulkan headers and the NV
//! extension's specification, built with the system C compiler and run through the layer the
//! way a user runs an unmodified application: the layer enabled through `VK_INSTANCE_LAYERS`.

use extmem_testkit::{layer_dir, LAYER, VALIDATION};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

fn client() -> &'static PathBuf {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/c/nv_client.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nv_client");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let status = Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-lvulkan")
            .status()
            .unwrap_or_else(|e| panic!("running {cc}: {e} (install gcc)"));
        assert!(status.success(), "{cc} failed on {} (needs libvulkan-dev)", source.display());
        out
    })
}

fn run(layers: &[&std::ffi::CStr], with_layer_path: bool, args: &[&str]) -> Output {
    run_with(layers, with_layer_path, args, &[])
}

fn run_with(
    layers: &[&std::ffi::CStr],
    with_layer_path: bool,
    args: &[&str],
    env: &[(&str, std::ffi::OsString)],
) -> Output {
    let names: Vec<_> = layers.iter().map(|l| l.to_str().unwrap()).collect();
    let mut cmd = Command::new(client());
    cmd.args(args)
        .env("VK_INSTANCE_LAYERS", names.join(":"))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("VK_LOADER_LAYERS_ENABLE");
    if with_layer_path {
        cmd.env("VK_ADD_LAYER_PATH", layer_dir());
    } else {
        cmd.env_remove("VK_ADD_LAYER_PATH");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run nv_client");
    eprintln!(
        "--- nv_client {args:?} with {names:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn passed(out: &Output) -> bool {
    out.status.success() && String::from_utf8_lossy(&out.stdout).lines().last() == Some("PASS")
}

#[test]
fn c_client_runs_with_validation_above_the_layer() {
    assert!(passed(&run(&[VALIDATION, LAYER], true, &[])));
}

#[test]
fn c_client_exports_and_imports_with_validation_below_the_layer() {
    let out = run(&[LAYER, VALIDATION], true, &["--export"]);
    assert!(passed(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("second instance imported the memory"));
}

#[test]
fn c_client_cannot_run_without_the_layer() {
    let out = run(&[], false, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no driver or layer offers VK_NV_external_memory_capabilities")
    );
}

#[test]
fn c_client_finds_the_extension_in_the_global_list_through_the_implicit_manifest() {
    // What `extmem run` does: the implicit manifest's folder first in XDG_DATA_DIRS, switched on
    // by EXTMEM_ENABLE_NV=1. An application that checks only the global list finds the NV
    // extension; validation is on through VK_INSTANCE_LAYERS.
    let env = [
        ("XDG_DATA_DIRS", extmem::layer::implicit_data_dirs_value(&layer_dir())),
        (extmem::layer::IMPLICIT_ENABLE_ENV, "1".into()),
    ];
    let out = run_with(&[VALIDATION], false, &["--export", "--require-global"], &env);
    assert!(passed(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is in the global extension list"));
    // Switched off, the implicit layer is not loaded and the client fails as without the layer.
    let off = [env[0].clone(), (extmem::layer::IMPLICIT_ENABLE_ENV, "0".into())];
    assert!(!run_with(&[], false, &["--require-global"], &off).status.success());
}
