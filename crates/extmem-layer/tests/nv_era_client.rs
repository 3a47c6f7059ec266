//! The C program in `tests/c/nv_era_client.c`: a Vulkan 1.0 application that requires
//! VK_NV_external_memory_capabilities, VK_NV_external_memory, VK_NV_dedicated_allocation and
//! VK_KHR_external_memory_fd up front (the VR-runtime pattern), creates a dedicated
//! NV-exportable image in one process and imports it in another, bytes compared. Built with
//! the system C compiler and run through the layer with validation below it (the client fails
//! on any validation message).

use extmem_testkit::{layer_dir, LAYER, VALIDATION};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

fn client() -> &'static PathBuf {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/c/nv_era_client.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nv_era_client");
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

fn spawn(layers: &[&std::ffi::CStr], with_layer_path: bool, args: &[&str]) -> Child {
    let names: Vec<_> = layers.iter().map(|l| l.to_str().unwrap()).collect();
    let mut cmd = Command::new(client());
    cmd.args(args)
        .env("VK_INSTANCE_LAYERS", names.join(":"))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("VK_LOADER_LAYERS_ENABLE")
        .env_remove("VK_LAYER_SETTINGS_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if with_layer_path {
        cmd.env("VK_ADD_LAYER_PATH", layer_dir());
    } else {
        cmd.env_remove("VK_ADD_LAYER_PATH");
    }
    cmd.spawn().expect("run nv_era_client")
}

fn finish(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().expect("wait for nv_era_client");
    eprintln!(
        "--- nv_era_client {what}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn passed(out: &Output) -> bool {
    out.status.success() && String::from_utf8_lossy(&out.stdout).lines().last() == Some("PASS")
}

fn socket_path(name: &str) -> String {
    std::env::temp_dir().join(format!("extmem-nv-era-{name}-{}", std::process::id())).display().to_string()
}

#[test]
fn producer_and_importer_share_a_dedicated_nv_image_with_validation_below_the_layer() {
    let socket = socket_path("below");
    let producer = spawn(&[LAYER, VALIDATION], true, &["produce", &socket]);
    let importer = spawn(&[LAYER, VALIDATION], true, &["import", &socket]);
    let (importer, producer) = (finish(importer, "import"), finish(producer, "produce"));
    assert!(passed(&importer), "the importer failed");
    assert!(passed(&producer), "the producer failed");
    assert!(String::from_utf8_lossy(&importer.stdout).contains("bytes match"));
}

#[test]
fn without_the_layer_the_client_names_the_missing_extension() {
    let out = finish(spawn(&[], false, &["produce", &socket_path("none")]), "without the layer");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("required instance extension VK_NV_external_memory_capabilities is missing"), "{stderr}");
}
