//! Vulkan (lavapipe) ⇄ OpenGL on Mesa's zink (GL on top of lavapipe) through EGL surfaceless:
//! every byte both ways.

mod common;

#[test]
fn zink_imports_vulkan_images_and_buffers_byte_for_byte() {
    let Some(ctx) = common::setup(&[("LIBGL_ALWAYS_SOFTWARE", "1"), ("GALLIUM_DRIVER", "zink")]) else { return };
    common::round_trip(&ctx, "zink", true);
}
