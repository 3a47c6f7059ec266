//! The GL_EXT_memory_object(_fd) and GL_EXT_semaphore(_fd) entry points, which `glow` does not
//! wrap, loaded through `eglGetProcAddress`, and their enums.

use std::ffi::c_void;

/// `GL_TEXTURE_TILING_EXT`.
pub const TEXTURE_TILING: u32 = 0x9580;
/// `GL_DEDICATED_MEMORY_OBJECT_EXT`.
pub const DEDICATED_MEMORY_OBJECT: u32 = 0x9581;
/// `GL_OPTIMAL_TILING_EXT`.
pub const OPTIMAL_TILING: u32 = 0x9584;
/// `GL_LINEAR_TILING_EXT`.
pub const LINEAR_TILING: u32 = 0x9585;
/// `GL_HANDLE_TYPE_OPAQUE_FD_EXT`.
pub const HANDLE_TYPE_OPAQUE_FD: u32 = 0x9586;
/// `GL_NUM_DEVICE_UUIDS_EXT`.
pub const NUM_DEVICE_UUIDS: u32 = 0x9596;
/// `GL_DEVICE_UUID_EXT`.
pub const DEVICE_UUID: u32 = 0x9597;
/// `GL_DRIVER_UUID_EXT`.
pub const DRIVER_UUID: u32 = 0x9598;
/// `GL_SEMAPHORE_TYPE_NV`.
pub const SEMAPHORE_TYPE: u32 = 0x95B3;
/// `GL_SEMAPHORE_TYPE_TIMELINE_NV`.
pub const SEMAPHORE_TYPE_TIMELINE: i32 = 0x95B5;
/// `GL_TIMELINE_SEMAPHORE_VALUE_NV`.
pub const TIMELINE_SEMAPHORE_VALUE: u32 = 0x9595;
/// `GL_LAYOUT_GENERAL_EXT`.
pub const LAYOUT_GENERAL: u32 = 0x958D;

type CreateMemoryObjects = unsafe extern "system" fn(i32, *mut u32);
type DeleteMemoryObjects = unsafe extern "system" fn(i32, *const u32);
type MemoryObjectParameteriv = unsafe extern "system" fn(u32, u32, *const i32);
type ImportMemoryFd = unsafe extern "system" fn(u32, u64, u32, i32);
type TexStorageMem2D = unsafe extern "system" fn(u32, i32, u32, i32, i32, u32, u64);
type BufferStorageMem = unsafe extern "system" fn(u32, isize, u32, u64);
type GetUnsignedBytev = unsafe extern "system" fn(u32, *mut u8);
type GetUnsignedBytesiv = unsafe extern "system" fn(u32, u32, *mut u8);
type GenSemaphores = unsafe extern "system" fn(i32, *mut u32);
type DeleteSemaphores = unsafe extern "system" fn(i32, *const u32);
type ImportSemaphoreFd = unsafe extern "system" fn(u32, u32, i32);
type CreateSemaphores = unsafe extern "system" fn(i32, *mut u32);
type SemaphoreParameteriv = unsafe extern "system" fn(u32, u32, *const i32);
type SemaphoreParameterui64v = unsafe extern "system" fn(u32, u32, *const u64);
type SemaphoreOp = unsafe extern "system" fn(u32, u32, *const u32, u32, *const u32, *const u32);

/// GL_EXT_memory_object + GL_EXT_memory_object_fd.
pub struct MemoryFns {
    pub create_memory_objects: CreateMemoryObjects,
    pub delete_memory_objects: DeleteMemoryObjects,
    pub memory_object_parameteriv: MemoryObjectParameteriv,
    pub import_memory_fd: ImportMemoryFd,
    pub tex_storage_mem_2d: TexStorageMem2D,
    pub buffer_storage_mem: BufferStorageMem,
    pub get_unsigned_bytev: GetUnsignedBytev,
    pub get_unsigned_bytei_v: GetUnsignedBytesiv,
}

/// GL_EXT_semaphore + GL_EXT_semaphore_fd.
pub struct SemaphoreFns {
    pub gen_semaphores: GenSemaphores,
    pub delete_semaphores: DeleteSemaphores,
    pub import_semaphore_fd: ImportSemaphoreFd,
    pub wait_semaphore: SemaphoreOp,
    pub signal_semaphore: SemaphoreOp,
    pub semaphore_parameterui64v: SemaphoreParameterui64v,
}

/// GL_NV_timeline_semaphore: Vulkan timeline semaphores in GL.
pub struct TimelineFns {
    pub create_semaphores: CreateSemaphores,
    pub semaphore_parameteriv: SemaphoreParameteriv,
}

/// Looks a name up; `None` where the driver has no such entry point.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<*const c_void>;

macro_rules! load {
    ($lookup:expr, $name:literal, $ty:ty) => {{
        let p = $lookup($name)?;
        // SAFETY: the driver's entry point of this name, whose signature the extension
        // specification defines as the type this is cast to.
        unsafe { std::mem::transmute::<*const c_void, $ty>(p) }
    }};
}

impl MemoryFns {
    /// The entry points, or `None` if one is missing.
    pub fn load(lookup: Lookup<'_>) -> Option<MemoryFns> {
        Some(MemoryFns {
            create_memory_objects: load!(lookup, "glCreateMemoryObjectsEXT", CreateMemoryObjects),
            delete_memory_objects: load!(lookup, "glDeleteMemoryObjectsEXT", DeleteMemoryObjects),
            memory_object_parameteriv: load!(lookup, "glMemoryObjectParameterivEXT", MemoryObjectParameteriv),
            import_memory_fd: load!(lookup, "glImportMemoryFdEXT", ImportMemoryFd),
            tex_storage_mem_2d: load!(lookup, "glTexStorageMem2DEXT", TexStorageMem2D),
            buffer_storage_mem: load!(lookup, "glBufferStorageMemEXT", BufferStorageMem),
            get_unsigned_bytev: load!(lookup, "glGetUnsignedBytevEXT", GetUnsignedBytev),
            get_unsigned_bytei_v: load!(lookup, "glGetUnsignedBytei_vEXT", GetUnsignedBytesiv),
        })
    }
}

impl SemaphoreFns {
    /// The entry points, or `None` if one is missing.
    pub fn load(lookup: Lookup<'_>) -> Option<SemaphoreFns> {
        Some(SemaphoreFns {
            gen_semaphores: load!(lookup, "glGenSemaphoresEXT", GenSemaphores),
            delete_semaphores: load!(lookup, "glDeleteSemaphoresEXT", DeleteSemaphores),
            import_semaphore_fd: load!(lookup, "glImportSemaphoreFdEXT", ImportSemaphoreFd),
            wait_semaphore: load!(lookup, "glWaitSemaphoreEXT", SemaphoreOp),
            signal_semaphore: load!(lookup, "glSignalSemaphoreEXT", SemaphoreOp),
            semaphore_parameterui64v: load!(lookup, "glSemaphoreParameterui64vEXT", SemaphoreParameterui64v),
        })
    }
}

impl TimelineFns {
    /// The entry points, or `None` if one is missing.
    pub fn load(lookup: Lookup<'_>) -> Option<TimelineFns> {
        Some(TimelineFns {
            create_semaphores: load!(lookup, "glCreateSemaphoresNV", CreateSemaphores),
            semaphore_parameteriv: load!(lookup, "glSemaphoreParameterivNV", SemaphoreParameteriv),
        })
    }
}
