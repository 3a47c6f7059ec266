//! An OpenGL 4.5 core context on EGL's surfaceless platform (no window, no display server),
//! with libEGL loaded at run time.

use crate::error::{hex, EglResultExt, Error, Result};
use crate::ext::{self, MemoryFns, SemaphoreFns, TimelineFns};
use glow::HasContext;
use khronos_egl as egl;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// `EGL_PLATFORM_SURFACELESS_MESA`.
const PLATFORM_SURFACELESS: egl::Enum = 0x31DD;
/// `EGL_CONTEXT_OPENGL_DEBUG`.
const CONTEXT_OPENGL_DEBUG: egl::Int = 0x31B0;

/// A current GL context and what it reported about itself. Not `Send`: a GL context is
/// current on the thread that made it.
pub struct Gl {
    egl: egl::DynamicInstance<egl::EGL1_5>,
    display: egl::Display,
    context: egl::Context,
    pub(crate) gl: glow::Context,
    pub(crate) mem: MemoryFns,
    pub(crate) sem: Option<SemaphoreFns>,
    pub(crate) timeline: Option<TimelineFns>,
    renderer: String,
    version: String,
    device_uuids: Vec<[u8; 16]>,
    driver_uuid: [u8; 16],
    messages: Arc<Mutex<Vec<String>>>,
    pub(crate) draw: std::cell::OnceCell<crate::draw::Draw>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Gl {
    /// Loads libEGL, opens the surfaceless platform and makes a GL 4.5 core debug context
    /// current on this thread. Fails with a clear error where there is no EGL, no surfaceless
    /// platform, or the driver lacks GL_EXT_memory_object_fd.
    pub fn new() -> Result<Gl> {
        // SAFETY: loads the system's libEGL, which implements the EGL API.
        let egl = unsafe { egl::DynamicInstance::<egl::EGL1_5>::load_required() }
            .map_err(|e| Error::NoLibrary(e.to_string()))?;
        let client = egl.query_string(None, egl::EXTENSIONS).egl("eglQueryString(EGL_EXTENSIONS)")?;
        if !client.to_string_lossy().split(' ').any(|e| e == "EGL_MESA_platform_surfaceless") {
            return Err(Error::MissingExtension {
                renderer: "EGL".into(),
                extension: "EGL_MESA_platform_surfaceless",
                needed_for: "GL without a window",
            });
        }
        // SAFETY: the surfaceless platform takes no native display.
        let display =
            unsafe { egl.get_platform_display(PLATFORM_SURFACELESS, std::ptr::null_mut(), &[egl::ATTRIB_NONE]) }
                .egl("eglGetPlatformDisplay(EGL_PLATFORM_SURFACELESS_MESA)")?;
        egl.initialize(display).egl("eglInitialize")?;
        egl.bind_api(egl::OPENGL_API).egl("eglBindAPI(EGL_OPENGL_API)")?;
        let display_extensions = egl.query_string(Some(display), egl::EXTENSIONS).egl("eglQueryString(display)")?;
        let config = if display_extensions.to_string_lossy().split(' ').any(|e| e == "EGL_KHR_no_config_context") {
            // SAFETY: EGL_NO_CONFIG_KHR (null) is a valid config where this extension is present.
            unsafe { egl::Config::from_ptr(std::ptr::null_mut()) }
        } else {
            egl.choose_first_config(display, &[egl::RENDERABLE_TYPE, egl::OPENGL_BIT, egl::NONE])
                .egl("eglChooseConfig")?
                .ok_or(Error::Egl { call: "eglChooseConfig (an OpenGL config)", error: egl::Error::BadConfig })?
        };
        let attributes = [
            egl::CONTEXT_MAJOR_VERSION,
            4,
            egl::CONTEXT_MINOR_VERSION,
            5,
            egl::CONTEXT_OPENGL_PROFILE_MASK,
            egl::CONTEXT_OPENGL_CORE_PROFILE_BIT,
            CONTEXT_OPENGL_DEBUG,
            egl::TRUE as egl::Int,
            egl::NONE,
        ];
        let context = egl.create_context(display, config, None, &attributes).egl("eglCreateContext (GL 4.5 core)")?;
        egl.make_current(display, None, None, Some(context)).egl("eglMakeCurrent (surfaceless)")?;
        let lookup = |name: &str| egl.get_proc_address(name).map(|f| f as *const c_void);
        // SAFETY: the context is current; the loader returns its entry points.
        let mut gl = unsafe { glow::Context::from_loader_function(|name| lookup(name).unwrap_or(std::ptr::null())) };
        // SAFETY: plain queries on the current context.
        let (renderer, version) =
            unsafe { (gl.get_parameter_string(glow::RENDERER), gl.get_parameter_string(glow::VERSION)) };
        let messages = Arc::new(Mutex::new(Vec::new()));
        install_debug_output(&mut gl, &messages);
        let has = |name: &str| gl.supported_extensions().contains(name);
        let needed = "importing Vulkan memory";
        for extension in ["GL_EXT_memory_object", "GL_EXT_memory_object_fd"] {
            if !has(extension) {
                return Err(Error::MissingExtension { renderer, extension, needed_for: needed });
            }
        }
        let mem = MemoryFns::load(&lookup).ok_or_else(|| Error::MissingExtension {
            renderer: renderer.clone(),
            extension: "GL_EXT_memory_object (an entry point)",
            needed_for: needed,
        })?;
        let sem =
            (has("GL_EXT_semaphore") && has("GL_EXT_semaphore_fd")).then(|| SemaphoreFns::load(&lookup)).flatten();
        let timeline = sem.as_ref().and(has("GL_NV_timeline_semaphore").then(|| TimelineFns::load(&lookup)).flatten());
        let (device_uuids, driver_uuid) = uuids(&gl, &mem);
        let gl = Gl {
            egl,
            display,
            context,
            gl,
            mem,
            sem,
            timeline,
            renderer,
            version,
            device_uuids,
            driver_uuid,
            messages,
            draw: std::cell::OnceCell::new(),
            _not_send: std::marker::PhantomData,
        };
        gl.check("creating the context")?;
        Ok(gl)
    }

    /// `GL_RENDERER`: "llvmpipe (...)", "zink (...)", "NVIDIA H100 .../PCIe/SSE2", ...
    pub fn renderer(&self) -> &str {
        &self.renderer
    }

    /// `GL_VERSION`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `GL_DEVICE_UUID_EXT` of each device the context runs on.
    pub fn device_uuids(&self) -> &[[u8; 16]] {
        &self.device_uuids
    }

    /// `GL_DRIVER_UUID_EXT`.
    pub fn driver_uuid(&self) -> [u8; 16] {
        self.driver_uuid
    }

    /// Whether the driver has GL_EXT_semaphore_fd (Vulkan binary semaphores can order GL's
    /// work).
    pub fn has_semaphores(&self) -> bool {
        self.sem.is_some()
    }

    /// Whether it also has GL_NV_timeline_semaphore (Vulkan timeline semaphores, extmem's frame
    /// protocol on the GPU).
    pub fn has_timeline_semaphores(&self) -> bool {
        self.timeline.is_some()
    }

    /// Refuses memory made on another device or driver (opaque fds import only where both
    /// UUIDs match, VkPhysicalDeviceIDProperties' rule).
    pub fn check_uuids(&self, device_uuid: &[u8; 16], driver_uuid: &[u8; 16]) -> Result<()> {
        if self.device_uuids.contains(device_uuid) && self.driver_uuid == *driver_uuid {
            return Ok(());
        }
        Err(Error::OtherDevice {
            renderer: self.renderer.clone(),
            gl_device: self.device_uuids.iter().map(hex).collect::<Vec<_>>().join(","),
            gl_driver: hex(&self.driver_uuid),
            device: hex(device_uuid),
            driver: hex(driver_uuid),
        })
    }

    /// Fails if GL reported an error (`glGetError`) or a debug message of type error since the
    /// last check.
    pub fn check(&self, call: &'static str) -> Result<()> {
        let mut errors = Vec::new();
        // SAFETY: a plain query on the current context.
        while let e @ 1.. = unsafe { self.gl.get_error() } {
            errors.push(format!("glGetError {e:#06x}"));
            if errors.len() > 16 {
                break;
            }
        }
        errors.append(&mut self.messages.lock().unwrap_or_else(|e| e.into_inner()));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Gl { call, detail: errors.join("; ") })
        }
    }

    /// `glFinish`: every GL command so far has completed.
    pub fn finish(&self) -> Result<()> {
        // SAFETY: the current context.
        unsafe { self.gl.finish() };
        self.check("glFinish")
    }
}

impl Drop for Gl {
    fn drop(&mut self) {
        if let Some(d) = self.draw.get() {
            d.delete(&self.gl);
        }
        let _ = self.egl.make_current(self.display, None, None, None);
        let _ = self.egl.destroy_context(self.display, self.context);
        // The display stays initialised: other contexts of this process may use it.
    }
}

/// Collects the driver's debug messages of type error (synchronous, so they belong to the
/// call that caused them).
fn install_debug_output(gl: &mut glow::Context, messages: &Arc<Mutex<Vec<String>>>) {
    let sink = messages.clone();
    // SAFETY: the current context; the callback only appends to the shared list.
    unsafe {
        gl.enable(glow::DEBUG_OUTPUT);
        gl.enable(glow::DEBUG_OUTPUT_SYNCHRONOUS);
        gl.debug_message_callback(move |_source, kind, id, severity, text| {
            if kind == glow::DEBUG_TYPE_ERROR || severity == glow::DEBUG_SEVERITY_HIGH {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(format!("GL debug {id:#x}: {text}"));
            }
        });
    }
}

/// The context's device UUIDs and its driver UUID (GL_EXT_memory_object).
fn uuids(gl: &glow::Context, mem: &MemoryFns) -> (Vec<[u8; 16]>, [u8; 16]) {
    // SAFETY: plain queries on the current context into buffers of GL_UUID_SIZE_EXT (16) bytes.
    unsafe {
        let n = gl.get_parameter_i32(ext::NUM_DEVICE_UUIDS).max(0) as u32;
        let devices = (0..n)
            .map(|i| {
                let mut u = [0u8; 16];
                (mem.get_unsigned_bytei_v)(ext::DEVICE_UUID, i, u.as_mut_ptr());
                u
            })
            .collect();
        let mut driver = [0u8; 16];
        (mem.get_unsigned_bytev)(ext::DRIVER_UUID, driver.as_mut_ptr());
        (devices, driver)
    }
}
