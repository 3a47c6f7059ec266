//! Vulkan (lavapipe) ⇄ OpenGL on Mesa's llvmpipe through EGL surfaceless: an image, every byte
//! both ways. A buffer is refused with the reason: llvmpipe imports a buffer only from memory 48
//! bytes larger than it, and lavapipe allocates a buffer's memory at exactly its size.

mod common;

#[test]
fn llvmpipe_imports_vulkan_images_and_buffers_byte_for_byte() {
    let Some(ctx) = common::setup(&[("LIBGL_ALWAYS_SOFTWARE", "1"), ("GALLIUM_DRIVER", "llvmpipe")]) else { return };
    common::round_trip(&ctx, "llvmpipe", false);
}
