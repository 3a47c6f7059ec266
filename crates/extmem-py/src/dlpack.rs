//! The DLPack C ABI (dlpack.h 1.0: the legacy `DLManagedTensor` and the versioned
//! `DLManagedTensorVersioned`) and the capsules that hand a tensor to a consumer while keeping
//! the shared memory alive until the consumer's deleter runs.
//!
//! Written out here rather than taken from a crate: `dlpark` 0.10 (the maintained one) needs
//! pyo3 0.30, which cannot be linked beside this module's pyo3 0.27, and Rust 1.88.

use crate::layout::Layout;
use pyo3::ffi;
use pyo3::prelude::*;
use std::any::Any;
use std::ffi::{c_void, CStr};

/// `kDLCPU`.
pub const KDL_CPU: i32 = 1;
/// `kDLCUDA`.
pub const KDL_CUDA: i32 = 2;
/// `DLPACK_FLAG_BITMASK_READ_ONLY`.
pub const FLAG_READ_ONLY: u64 = 1 << 0;
/// `DLPACK_FLAG_BITMASK_IS_COPIED`.
const FLAG_IS_COPIED: u64 = 1 << 1;
/// The DLPack version of the versioned capsule.
pub const VERSION: (u32, u32) = (1, 0);

const LEGACY_NAME: &CStr = c"dltensor";
const LEGACY_USED: &CStr = c"used_dltensor";
const VERSIONED_NAME: &CStr = c"dltensor_versioned";
const VERSIONED_USED: &CStr = c"used_dltensor_versioned";

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
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

#[repr(C)]
struct DLPackVersion {
    major: u32,
    minor: u32,
}

#[repr(C)]
struct DLManagedTensorVersioned {
    version: DLPackVersion,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

/// Where the tensor lives and what keeps it alive.
pub struct Target {
    /// The first byte.
    pub data: *mut c_void,
    /// Bytes from `data` that may be addressed.
    pub len: u64,
    /// `(device type, device id)`.
    pub device: (i32, i32),
    /// Held until the consumer deletes the tensor (the imported mapping, or a copy).
    pub keep: Box<dyn Any>,
    /// The bytes are a copy (sets `DLPACK_FLAG_BITMASK_IS_COPIED` in a versioned capsule).
    pub copied: bool,
}

/// What the managed tensor owns: its shape, strides and whatever keeps the memory alive.
struct Owner {
    shape: Vec<i64>,
    strides: Option<Vec<i64>>,
    _keep: Box<dyn Any>,
}

/// Frees a legacy managed tensor made by [`capsule`].
///
/// # Safety
/// `t` must come from [`capsule`] and not have been deleted before.
unsafe extern "C" fn legacy_deleter(t: *mut DLManagedTensor) {
    if t.is_null() {
        return;
    }
    // SAFETY: both boxes were leaked by `capsule` for exactly this call.
    unsafe {
        let t = Box::from_raw(t);
        drop(Box::from_raw(t.manager_ctx as *mut Owner));
    }
}

/// Frees a versioned managed tensor made by [`capsule`].
///
/// # Safety
/// As [`legacy_deleter`].
unsafe extern "C" fn versioned_deleter(t: *mut DLManagedTensorVersioned) {
    if t.is_null() {
        return;
    }
    // SAFETY: as in `legacy_deleter`.
    unsafe {
        let t = Box::from_raw(t);
        drop(Box::from_raw(t.manager_ctx as *mut Owner));
    }
}

/// The legacy capsule's destructor: deletes the tensor unless a consumer took it (renaming the
/// capsule `used_dltensor` and taking over the deleter call).
unsafe extern "C" fn legacy_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with one of our capsules.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, LEGACY_USED.as_ptr()) == 1 {
            return;
        }
        let t = ffi::PyCapsule_GetPointer(capsule, LEGACY_NAME.as_ptr()) as *mut DLManagedTensor;
        if t.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        if let Some(d) = (*t).deleter {
            d(t);
        }
    }
}

/// As [`legacy_destructor`], for `dltensor_versioned` capsules.
unsafe extern "C" fn versioned_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with one of our capsules.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, VERSIONED_USED.as_ptr()) == 1 {
            return;
        }
        let t = ffi::PyCapsule_GetPointer(capsule, VERSIONED_NAME.as_ptr()) as *mut DLManagedTensorVersioned;
        if t.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        if let Some(d) = (*t).deleter {
            d(t);
        }
    }
}

/// A capsule for `target` laid out as `layout`: `dltensor_versioned` (DLPack 1.0) when
/// `versioned`, else the legacy `dltensor`.
pub fn capsule(py: Python<'_>, target: Target, layout: &Layout, versioned: bool) -> PyResult<Py<PyAny>> {
    capsule_with_flags(py, target, layout, versioned, 0)
}

/// [`capsule`] with extra DLPack flags in a versioned capsule ([`FLAG_READ_ONLY`]; a legacy
/// capsule has no flags).
pub fn capsule_with_flags(
    py: Python<'_>,
    target: Target,
    layout: &Layout,
    versioned: bool,
    flags: u64,
) -> PyResult<Py<PyAny>> {
    if layout.span_bytes() > target.len {
        return Err(crate::errors::LayoutError::new_err(format!(
            "the tensor spans {} bytes, the memory holds {}",
            layout.span_bytes(),
            target.len
        )));
    }
    let owner = Box::into_raw(Box::new(Owner {
        shape: layout.shape.clone(),
        strides: layout.strides.clone(),
        _keep: target.keep,
    }));
    let tensor = DLTensor {
        data: target.data,
        device: DLDevice { device_type: target.device.0, device_id: target.device.1 },
        ndim: layout.shape.len() as i32,
        dtype: DLDataType { code: layout.code, bits: layout.bits, lanes: 1 },
        // SAFETY: `owner` (and its vectors) live until the deleter runs.
        shape: unsafe { (*owner).shape.as_mut_ptr() },
        strides: unsafe { (*owner).strides.as_mut().map_or(std::ptr::null_mut(), |s| s.as_mut_ptr()) },
        byte_offset: 0,
    };
    if versioned {
        let managed = Box::into_raw(Box::new(DLManagedTensorVersioned {
            version: DLPackVersion { major: VERSION.0, minor: VERSION.1 },
            manager_ctx: owner as *mut c_void,
            deleter: Some(versioned_deleter),
            flags: flags | if target.copied { FLAG_IS_COPIED } else { 0 },
            dl_tensor: tensor,
        }));
        // SAFETY: a live pointer and a static name; on failure the boxes are freed here.
        unsafe { wrap(py, managed as *mut c_void, VERSIONED_NAME, versioned_destructor, || versioned_deleter(managed)) }
    } else {
        let managed = Box::into_raw(Box::new(DLManagedTensor {
            dl_tensor: tensor,
            manager_ctx: owner as *mut c_void,
            deleter: Some(legacy_deleter),
        }));
        // SAFETY: as above.
        unsafe { wrap(py, managed as *mut c_void, LEGACY_NAME, legacy_destructor, || legacy_deleter(managed)) }
    }
}

/// `PyCapsule_New`, freeing the tensor with `free` where that fails.
///
/// # Safety
/// `ptr` must be a tensor that `destructor` and `free` know how to delete.
unsafe fn wrap(
    py: Python<'_>,
    ptr: *mut c_void,
    name: &'static CStr,
    destructor: unsafe extern "C" fn(*mut ffi::PyObject),
    free: impl FnOnce(),
) -> PyResult<Py<PyAny>> {
    // SAFETY: the caller's promise; `name` is static as the capsule requires.
    unsafe {
        let c = ffi::PyCapsule_New(ptr, name.as_ptr(), Some(destructor));
        if c.is_null() {
            free();
            return Err(PyErr::fetch(py));
        }
        Ok(Py::from_owned_ptr(py, c))
    }
}
