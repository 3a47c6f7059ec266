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

/// Looks a name up; `None` where the driver has no such entry point.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<*const c_void>;

/// A struct of entry points, each named once with its type and GL name, and its `load`.
macro_rules! entry_points {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty = $gl:literal,)* }) => {
        $(#[$doc])*
        pub struct $name {
            $(pub $field: $ty,)*
        }

        impl $name {
            /// The entry points, or `None` if one is missing.
            pub fn load(lookup: Lookup<'_>) -> Option<$name> {
                Some($name {
                    $($field: {
                        let p = lookup($gl)?;
                        // SAFETY: the driver's entry point of this name, whose signature the
                        // extension specification defines as the type this is cast to.
                        unsafe { std::mem::transmute::<*const c_void, $ty>(p) }
                    },)*
                })
            }
        }
    };
}

entry_points! {
    /// GL_EXT_memory_object + GL_EXT_memory_object_fd.
    MemoryFns {
        create_memory_objects: CreateMemoryObjects = "glCreateMemoryObjectsEXT",
        delete_memory_objects: DeleteMemoryObjects = "glDeleteMemoryObjectsEXT",
        memory_object_parameteriv: MemoryObjectParameteriv = "glMemoryObjectParameterivEXT",
        import_memory_fd: ImportMemoryFd = "glImportMemoryFdEXT",
        tex_storage_mem_2d: TexStorageMem2D = "glTexStorageMem2DEXT",
        buffer_storage_mem: BufferStorageMem = "glBufferStorageMemEXT",
        get_unsigned_bytev: GetUnsignedBytev = "glGetUnsignedBytevEXT",
        get_unsigned_bytei_v: GetUnsignedBytesiv = "glGetUnsignedBytei_vEXT",
    }
}

entry_points! {
    /// GL_EXT_semaphore + GL_EXT_semaphore_fd.
    SemaphoreFns {
        gen_semaphores: GenSemaphores = "glGenSemaphoresEXT",
        delete_semaphores: DeleteSemaphores = "glDeleteSemaphoresEXT",
        import_semaphore_fd: ImportSemaphoreFd = "glImportSemaphoreFdEXT",
        wait_semaphore: SemaphoreOp = "glWaitSemaphoreEXT",
        signal_semaphore: SemaphoreOp = "glSignalSemaphoreEXT",
        semaphore_parameterui64v: SemaphoreParameterui64v = "glSemaphoreParameterui64vEXT",
    }
}

entry_points! {
    /// GL_NV_timeline_semaphore: Vulkan timeline semaphores in GL.
    TimelineFns {
        create_semaphores: CreateSemaphores = "glCreateSemaphoresNV",
        semaphore_parameteriv: SemaphoreParameteriv = "glSemaphoreParameterivNV",
    }
}
