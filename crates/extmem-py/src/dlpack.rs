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
const KDL_FLOAT: u8 = 2;

/// Shape, element type and strides of the tensor a descriptor describes.
pub struct Layout {
    /// Dimensions.
    pub shape: Vec<i64>,
    /// Strides in elements (`None`: compact row-major).
    pub strides: Option<Vec<i64>>,
    code: u8,
    bits: u8,
}

impl Layout {
    /// A buffer is 1-D uint8; a LINEAR 2D image of a known format is height x width x channels
    /// with its row pitch; anything else has no tensor layout.
    pub fn of(desc: &extmem::Descriptor) -> Result<Layout, String> {
        use extmem::vk::{Format as F, ImageTiling};
        match desc.resource {
            extmem::ResourceDesc::Buffer(b) => {
                Ok(Layout { shape: vec![b.size as i64], strides: None, code: KDL_UINT, bits: 8 })
            }
            extmem::ResourceDesc::Image(i) => {
                let (code, bits, channels) = match i.format {
                    F::R8G8B8A8_UNORM | F::R8G8B8A8_UINT | F::R8G8B8A8_SRGB | F::B8G8R8A8_UNORM | F::B8G8R8A8_SRGB => {
                        (KDL_UINT, 8, 4)
                    }
                    F::R8_UNORM | F::R8_UINT => (KDL_UINT, 8, 1),
                    F::R32_SFLOAT => (KDL_FLOAT, 32, 1),
                    F::R16G16B16A16_SFLOAT => (KDL_FLOAT, 16, 4),
                    F::R32G32B32A32_SFLOAT => (KDL_FLOAT, 32, 4),
                    f => return Err(format!("{f:?} images have no tensor dtype here; share a buffer")),
                };
                let element = bits as u64 / 8;
                if i.tiling != ImageTiling::LINEAR || desc.row_pitch == 0 || desc.row_pitch % element != 0 {
                    return Err(format!(
                        "a {:?} {:?} image: its bytes are in the driver's tiling, not a tensor layout; share a buffer or a LINEAR image",
                        i.format, i.tiling
                    ));
                }
                if i.extent.depth != 1 || i.array_layers != 1 {
                    return Err("only single-layer 2D images map to a tensor".into());
                }
                let (h, w, c) = (i.extent.height as i64, i.extent.width as i64, channels);
                Ok(Layout {
                    shape: vec![h, w, c],
                    strides: Some(vec![(desc.row_pitch / element) as i64, c, 1]),
                    code,
                    bits,
                })
            }
            other => Err(format!("{other:?} has no tensor layout here; share a buffer or a LINEAR image")),
        }
    }

    /// The bytes from the first element to one past the last.
    pub fn span_bytes(&self) -> u64 {
        let element = self.bits as u64 / 8;
        match &self.strides {
            None => self.shape.iter().product::<i64>() as u64 * element,
            Some(st) => (self.shape.iter().zip(st).map(|(n, s)| (n - 1) * s).sum::<i64>() + 1) as u64 * element,
        }
    }
}
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

/// What the managed tensor owns: its shape, strides and a reference on the mapping.
struct Owner {
    shape: Vec<i64>,
    strides: Option<Vec<i64>>,
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

/// A `dltensor` capsule for `memory` laid out as `layout` on CUDA device `device`.
pub fn capsule(py: Python<'_>, memory: Arc<CudaMemory>, layout: &Layout, device: i32) -> PyResult<Py<PyAny>> {
    if layout.span_bytes() > memory.len() as u64 {
        return Err(pyo3::exceptions::PyValueError::new_err("the tensor would reach past the imported memory"));
    }
    let data = memory.device_ptr() as *mut c_void;
    let owner = Box::into_raw(Box::new(Owner {
        shape: layout.shape.clone(),
        strides: layout.strides.clone(),
        _memory: memory,
    }));
    let managed = Box::into_raw(Box::new(DLManagedTensor {
        dl_tensor: DLTensor {
            data,
            device: DLDevice { device_type: KDL_CUDA, device_id: device },
            ndim: layout.shape.len() as i32,
            dtype: DLDataType { code: layout.code, bits: layout.bits, lanes: 1 },
            // SAFETY: `owner` (and its vectors) live until the deleter runs.
            shape: unsafe { (*owner).shape.as_mut_ptr() },
            strides: unsafe { (*owner).strides.as_mut().map_or(std::ptr::null_mut(), |s| s.as_mut_ptr()) },
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
