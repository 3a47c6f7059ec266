//! The GL tests' scenario: a Vulkan producer (through the extmem layer, the NV path, Khronos
//! validation on) shares an image and a buffer; GL imports each, checks every byte, writes its
//! own pattern, and Vulkan checks every byte of that. Each test file is its own process, so
//! each picks its Mesa driver before EGL loads.

use extmem::{
    pattern, vk, BufferDesc, Context, ContextOptions, Dedicated, HandleType, Handoff, ImageDesc, PathKind, SharedMemory,
};
use extmem_gl::{Error, Gl, GlMemory};
use std::sync::Arc;

#[allow(dead_code)] // each test file uses part of this module
pub mod hostile;

/// Sets the environment (before any thread reads it) and makes the Vulkan context; `None`
/// (after a SKIPPED line) where the Vulkan device is not lavapipe, whose memory Mesa's GL
/// drivers share.
pub fn setup(env: &[(&str, &str)]) -> Option<Arc<Context>> {
    // SAFETY: each test binary has one test, which calls this first, before other threads.
    unsafe {
        for (k, v) in env {
            std::env::set_var(k, v);
        }
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        assert!(extmem::layer::add_to_loader_path().is_some(), "cargo build -p extmem-layer first");
    }
    let ctx = Context::new(&ContextOptions::default().path(PathKind::Nv).validation(true).app_name("extmem GL test"))
        .expect("a Vulkan device");
    if !ctx.device_name().contains("llvmpipe") {
        skipped(format_args!(
            "SKIPPED Mesa GL: the Vulkan device is {}, not lavapipe (`extmem demo --gl` covers other GPUs)",
            ctx.device_name()
        ));
        return None;
    }
    Some(ctx)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The round trip on `ctx` with GL from `Gl::new()`, whose renderer must contain `renderer`.
/// Where `buffers` is false, GL must refuse the buffer with an error that says why.
#[allow(dead_code)]
pub fn round_trip(ctx: &Arc<Context>, renderer: &str, buffers: bool) {
    let gl = Gl::new().expect("EGL surfaceless with GL 4.5 (install libegl1 libegl-mesa0 libgl1-mesa-dri)");
    eprintln!("GL: {} ({})", gl.renderer(), gl.version());
    assert!(gl.renderer().contains(renderer), "GL_RENDERER {:?} is not the {renderer} driver asked for", gl.renderer());
    assert!(gl.device_uuids().contains(&ctx.device_uuid()), "GL and lavapipe report one device UUID");
    assert_eq!(gl.driver_uuid(), ctx.driver_uuid(), "GL and lavapipe report one driver UUID");
    assert!(!gl.has_semaphores(), "Mesa 22.3's {renderer} has no GL_EXT_semaphore_fd (host synchronisation here)");

    let image_usage = vk::ImageUsageFlags::TRANSFER_SRC
        | vk::ImageUsageFlags::TRANSFER_DST
        | vk::ImageUsageFlags::SAMPLED
        | vk::ImageUsageFlags::COLOR_ATTACHMENT;
    let buffer_usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    let resources = [
        SharedMemory::new_image(
            ctx,
            ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 320, 200, image_usage),
            HandleType::OpaqueFd,
            Dedicated::Always,
        )
        .unwrap(),
        SharedMemory::new_buffer(
            ctx,
            BufferDesc { size: 100_000, usage: buffer_usage },
            HandleType::OpaqueFd,
            Dedicated::Always,
        )
        .unwrap(),
    ];
    for (n, shared) in resources.iter().enumerate() {
        let what = if n == 0 { "image" } else { "buffer" };
        let len = shared.data_len().unwrap() as usize;
        if n == 1 && !buffers {
            let (desc, fd) = shared.export().unwrap();
            let e = GlMemory::import(&gl, &desc, fd).err().expect("llvmpipe refuses a buffer without a 48-byte tail");
            assert!(e.to_string().contains("48 bytes larger"), "{e}");
            continue;
        }
        for frame in 0..2u64 {
            shared.write(&pattern::fill(len, frame), Handoff::host()).unwrap();
            let (desc, fd) = shared.export().unwrap();
            let memory = GlMemory::import(&gl, &desc, fd).unwrap_or_else(|e| panic!("{what}: {e}"));
            let seen = memory.read().unwrap();
            assert_eq!(seen.len(), len);
            assert_eq!(pattern::first_mismatch(&seen, frame), None, "{what} frame {frame}: GL reads Vulkan's bytes");
            memory.write(&pattern::fill(len, pattern::writeback_seed(frame))).unwrap();
            gl.finish().unwrap();
            let back = shared.read(Handoff::host()).unwrap();
            assert_eq!(
                pattern::first_mismatch(&back, pattern::writeback_seed(frame)),
                None,
                "{what} frame {frame}: Vulkan reads GL's bytes"
            );
        }
    }

    // Refusals, each before GL is asked, each closing the descriptor.
    let shared = &resources[0];
    let before = open_fds();
    let refuse = |change: &dyn Fn(&mut extmem::Descriptor), want: &str| {
        let (mut desc, fd) = shared.export().unwrap();
        change(&mut desc);
        let e = GlMemory::import(&gl, &desc, fd).err().expect("refused");
        assert!(e.to_string().contains(want), "{e}");
        e
    };
    let e = refuse(&|d| d.device_uuid = [7; 16], "runs on device");
    assert!(matches!(e, Error::OtherDevice { .. }) && e.to_string().contains(gl.renderer()), "{e}");
    refuse(&|d| d.driver_uuid = [9; 16], "with driver");
    refuse(&|d| d.handle_type = HandleType::HostAllocation, "imports opaque fds");
    refuse(
        &|d| {
            if let extmem::ResourceDesc::Image(i) = &mut d.resource {
                i.format = vk::Format::R16G16B16A16_SFLOAT;
            }
        },
        "no GL format",
    );
    assert_eq!(open_fds(), before, "every refused descriptor was closed");
    gl.check("the whole test").unwrap();
    drop(resources);
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "{} validation message(s):\n{}", m.len(), m.join("\n"));
}

/// No validation message was heard.
#[allow(dead_code)]
pub fn finish(ctx: &Context) {
    let m = ctx.validation_messages();
    assert!(m.is_empty(), "{} validation message(s):\n{}", m.len(), m.join("\n"));
}

/// Says a test was skipped, past the test harness's output capture (which would hide it).
fn skipped(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}
