//! The framebuffer draw that writes an image: a full-screen triangle whose fragments fetch their
//! texel from a source texture (`texelFetch`, exact for 8-bit normalised formats).

use crate::error::{Error, Result};
use glow::HasContext;

const VERTEX: &str = "#version 450 core
void main() {
    // A triangle covering the viewport: (-1,-1), (3,-1), (-1,3).
    vec2 p = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    gl_Position = vec4(p, 0.0, 1.0);
}";

const FRAGMENT: &str = "#version 450 core
layout(binding = 0) uniform sampler2D source;
layout(location = 0) out vec4 color;
void main() {
    color = texelFetch(source, ivec2(gl_FragCoord.xy), 0);
}";

/// The program, an empty vertex array and the source texture, made once per context.
pub(crate) struct Draw {
    program: glow::Program,
    vertex_array: glow::VertexArray,
    source: glow::Texture,
}

fn gl_err(call: &'static str) -> impl FnOnce(String) -> Error {
    move |detail| Error::Gl { call, detail }
}

impl Draw {
    fn new(g: &glow::Context) -> Result<Draw> {
        // SAFETY: the current context; objects made here are owned by the returned value.
        unsafe {
            let program = g.create_program().map_err(gl_err("glCreateProgram"))?;
            for (kind, source) in [(glow::VERTEX_SHADER, VERTEX), (glow::FRAGMENT_SHADER, FRAGMENT)] {
                let shader = g.create_shader(kind).map_err(gl_err("glCreateShader"))?;
                g.shader_source(shader, source);
                g.compile_shader(shader);
                if !g.get_shader_compile_status(shader) {
                    let log = g.get_shader_info_log(shader);
                    g.delete_shader(shader);
                    return Err(Error::Gl { call: "glCompileShader", detail: log });
                }
                g.attach_shader(program, shader);
                g.delete_shader(shader);
            }
            g.link_program(program);
            if !g.get_program_link_status(program) {
                return Err(Error::Gl { call: "glLinkProgram", detail: g.get_program_info_log(program) });
            }
            let vertex_array = g.create_vertex_array().map_err(gl_err("glCreateVertexArray"))?;
            let source = g.create_texture().map_err(gl_err("glCreateTexture"))?;
            Ok(Draw { program, vertex_array, source })
        }
    }

    pub(crate) fn delete(&self, g: &glow::Context) {
        // SAFETY: objects this value made, on the context that made them.
        unsafe {
            g.delete_program(self.program);
            g.delete_vertex_array(self.vertex_array);
            g.delete_texture(self.source);
        }
    }
}

/// Draws `bytes` (width x height texels of `format`, rows tightly packed, row 0 first) into the
/// framebuffer `target`, with the program made once into `cache` (the context's). The caller
/// checks GL's errors after it (`Gl::check`).
#[allow(clippy::too_many_arguments)] // the draw's parameters, each one value
pub(crate) fn copy_into(
    g: &glow::Context,
    cache: &std::cell::OnceCell<Draw>,
    target: glow::Framebuffer,
    width: u32,
    height: u32,
    internal: u32,
    format: u32,
    bytes: &[u8],
) -> Result<()> {
    if cache.get().is_none() {
        let _ = cache.set(Draw::new(g)?);
    }
    let d = cache.get().expect("set above");
    let (w, h) = (width as i32, height as i32);
    // SAFETY: the current context; `bytes` holds width x height texels (checked by the caller).
    unsafe {
        g.bind_texture(glow::TEXTURE_2D, Some(d.source));
        g.pixel_store_i32(glow::UNPACK_ALIGNMENT, 1);
        g.tex_image_2d(
            glow::TEXTURE_2D,
            0,
            internal as i32,
            w,
            h,
            0,
            format,
            glow::UNSIGNED_BYTE,
            glow::PixelUnpackData::Slice(Some(bytes)),
        );
        g.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MAX_LEVEL, 0);
        g.active_texture(glow::TEXTURE0);
        g.bind_framebuffer(glow::DRAW_FRAMEBUFFER, Some(target));
        g.viewport(0, 0, w, h);
        g.disable(glow::BLEND);
        g.disable(glow::DEPTH_TEST);
        g.disable(glow::SCISSOR_TEST);
        g.use_program(Some(d.program));
        g.bind_vertex_array(Some(d.vertex_array));
        g.draw_arrays(glow::TRIANGLES, 0, 3);
        g.bind_vertex_array(None);
        g.use_program(None);
        g.bind_framebuffer(glow::DRAW_FRAMEBUFFER, None);
        g.bind_texture(glow::TEXTURE_2D, None);
    }
    Ok(())
}
