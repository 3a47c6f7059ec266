//! `extmem demo --consumer gl` as a user runs it: a Vulkan producer (validation on) and an OpenGL consumer
//! process on Mesa's llvmpipe and zink through EGL surfaceless, every byte of every frame
//! checked both ways; the output names the GL driver and the synchronisation.

use std::process::{Command, Output};

fn demo(driver: &str, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extmem"));
    cmd.args(["demo", "--consumer", "gl", "--validate", "--frames", "3", "--width", "200", "--height", "120"])
        .args(extra);
    cmd.env("LIBGL_ALWAYS_SOFTWARE", "1").env("GALLIUM_DRIVER", driver);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let out = cmd.output().expect("run extmem");
    eprintln!(
        "--- {driver} {extra:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Mesa's GL drivers share memory with lavapipe only; elsewhere `scripts/gpu-check.sh` runs the
/// demo on the GPU's own GL driver.
fn on_lavapipe() -> bool {
    let ctx =
        extmem::Context::new(&extmem::ContextOptions::default().path(extmem::PathKind::Khr)).expect("a Vulkan device");
    let yes = ctx.device_name().contains("llvmpipe");
    if !yes {
        skipped(format_args!("SKIPPED Mesa GL demo: the Vulkan device is {}, not lavapipe", ctx.device_name()));
    }
    yes
}

fn assert_pass(out: &Output, renderer: &str, object: &str) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the demo failed");
    assert!(text.lines().last().is_some_and(|l| l.starts_with("PASS: 3 frame(s)")), "no PASS line");
    assert!(text.contains(&format!("on {renderer}")), "the output names the GL driver {renderer}");
    assert!(text.contains("device and driver UUIDs match") && text.contains(object), "imported as {object}");
    assert!(text.contains("GL_EXT_semaphore_fd: no") && text.contains("then glFinish"), "says how it synchronised");
}

#[test]
fn the_gl_consumer_round_trips_an_image_on_llvmpipe_and_refuses_a_buffer_with_the_reason() {
    if !on_lavapipe() {
        return;
    }
    assert_pass(&demo("llvmpipe", &[]), "llvmpipe", "as a texture (glTexStorageMem2DEXT)");
    let out = demo("llvmpipe", &["--buffer"]);
    assert!(!out.status.success(), "llvmpipe cannot import lavapipe's buffers");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("llvmpipe imports a 96000-byte buffer only from memory at least 48 bytes larger"), "{err}");
}

#[test]
fn the_gl_consumer_round_trips_images_and_buffers_on_zink() {
    if !on_lavapipe() {
        return;
    }
    assert_pass(&demo("zink", &[]), "zink", "as a texture (glTexStorageMem2DEXT)");
    assert_pass(&demo("zink", &["--buffer"]), "zink", "as a buffer object (glBufferStorageMemEXT)");
}

/// Says a test was skipped, past the test harness's output capture (which would hide it).
fn skipped(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
