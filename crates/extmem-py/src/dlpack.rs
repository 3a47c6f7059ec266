//! The DLPack C structures (dlpack.h, v0.8 ABI) and a capsule that owns an imported CUDA
//! mapping until the consumer's deleter runs.

use extmem_cuda::CudaMemory;
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_void, CStr};
use std::sync::Arc;

/// `kDLCUDA`.
pub const KDL_CUDA: i32 = 2;
const KDL_UINT: u8 = 1;
const CAPSULE_NAME: &CStr = c"dltensor";
const USED_NAME: &CStr = c"used_dltensor";

#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// What the managed tensor owns: its shape and a reference on the mapping.
struct Owner {
    shape: [i64; 1],
    _memory: Arc<CudaMemory>,
}

/// Frees a managed tensor made by [`capsule`].
///
/// # Safety
/// `t` must come from [`capsule`] and not have been deleted before.
unsafe extern "C" fn deleter(t: *mut DLManagedTensor) {
    if t.is_null() {
        return;
    }
    // SAFETY: both boxes were leaked by `capsule` for exactly this call.
    unsafe {
        let t = Box::from_raw(t);
        drop(Box::from_raw(t.manager_ctx as *mut Owner));
    }
}

/// The capsule's destructor: deletes the tensor unless a consumer took it (and renamed the
/// capsule `used_dltensor`, taking over the deleter call).
unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with our capsule.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, USED_NAME.as_ptr()) == 1 {
            return;
        }
        let t = ffi::PyCapsule_GetPointer(capsule, CAPSULE_NAME.as_ptr()) as *mut DLManagedTensor;
        if t.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        if let Some(d) = (*t).deleter {
            d(t);
        }
    }
}

/// A `dltensor` capsule for `len` bytes (1-D uint8) of `memory` on CUDA device `device`.
pub fn capsule(py: Python<'_>, memory: Arc<CudaMemory>, len: i64, device: i32) -> PyResult<Py<PyAny>> {
    let data = memory.device_ptr() as *mut c_void;
    let owner = Box::into_raw(Box::new(Owner { shape: [len], _memory: memory }));
    let managed = Box::into_raw(Box::new(DLManagedTensor {
        dl_tensor: DLTensor {
            data,
            device: DLDevice { device_type: KDL_CUDA, device_id: device },
            ndim: 1,
            dtype: DLDataType { code: KDL_UINT, bits: 8, lanes: 1 },
            // SAFETY: `owner` lives until the deleter runs.
            shape: unsafe { (*owner).shape.as_mut_ptr() },
            strides: std::ptr::null_mut(), // compact row-major
            byte_offset: 0,
        },
        manager_ctx: owner as *mut c_void,
        deleter: Some(deleter),
    }));
    // SAFETY: a valid pointer and a static name; on failure the boxes are freed here.
    unsafe {
        let c = ffi::PyCapsule_New(managed as *mut c_void, CAPSULE_NAME.as_ptr(), Some(capsule_destructor));
        if c.is_null() {
            deleter(managed);
            return Err(PyErr::fetch(py));
        }
        Ok(Py::from_owned_ptr(py, c))
    }
}
