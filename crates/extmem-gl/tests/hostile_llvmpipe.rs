//! A hostile producer against OpenGL on Mesa's llvmpipe (see `common/hostile.rs`).

mod common;

#[test]
fn llvmpipe_refuses_every_hostile_producer_clearly() {
    let Some(ctx) = common::setup(&[("LIBGL_ALWAYS_SOFTWARE", "1"), ("GALLIUM_DRIVER", "llvmpipe")]) else { return };
    let gl = extmem_gl::Gl::new().expect("EGL surfaceless with GL 4.5");
    assert!(gl.renderer().contains("llvmpipe"), "{}", gl.renderer());
    common::hostile::run(&ctx, &gl);
    common::finish(&ctx);
}
