//! `extmem.SharedBuffer`: shared memory as a DLPack producer (the array API standard's
//! `__dlpack__` / `__dlpack_device__` protocol).

use crate::dlpack::{self, Target, KDL_CPU, KDL_CUDA};
use crate::layout::Layout;
use ::extmem::host::HostMapping;
use extmem_cuda::{CudaMemory, ExportableMemory};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use std::ffi::c_void;
use std::sync::Arc;

/// The memory behind a [`SharedBuffer`].
pub enum Memory {
    /// Imported into CUDA device `device`.
    Cuda {
        /// The import.
        memory: Arc<CudaMemory>,
        /// The CUDA device ordinal.
        device: i32,
    },
    /// CUDA memory this process made exportable and shared (the PyTorch-producer direction).
    Exported {
        /// The allocation.
        memory: Arc<ExportableMemory>,
        /// The CUDA device ordinal.
        device: i32,
    },
    /// A sub-allocation of a pool block mapped into CUDA device `device` (`extmem.PoolConsumer`).
    Pooled {
        /// The sub-allocation's pointer, into `block`, which it keeps mapped.
        pointer: Arc<extmem_cuda::PooledPointer>,
        /// The CUDA device ordinal.
        device: i32,
    },
    /// Host memory (a memfd) mapped into this process.
    Host {
        /// The mapping.
        mapping: Arc<HostMapping>,
        /// Where the resource starts in it.
        offset: u64,
    },
}

impl Memory {
    fn device(&self) -> (i32, i32) {
        match self {
            Memory::Cuda { device, .. } | Memory::Exported { device, .. } | Memory::Pooled { device, .. } => {
                (KDL_CUDA, *device)
            }
            Memory::Host { .. } => (KDL_CPU, 0),
        }
    }

    fn data(&self) -> (*mut c_void, u64) {
        match self {
            Memory::Cuda { memory, .. } => (memory.device_ptr() as *mut c_void, memory.len() as u64),
            Memory::Exported { memory, .. } => (memory.device_ptr() as *mut c_void, memory.len() as u64),
            Memory::Pooled { pointer, .. } => (pointer.device_ptr() as *mut c_void, pointer.len()),
            Memory::Host { mapping, offset } => {
                // SAFETY: `offset` lies inside the mapping (checked when it was received).
                (unsafe { mapping.ptr().cast::<u8>().add(*offset as usize) }.cast(), mapping.len() as u64 - offset)
            }
        }
    }

    fn keep(&self) -> Box<dyn std::any::Any> {
        match self {
            Memory::Cuda { memory, .. } => Box::new(memory.clone()),
            Memory::Exported { memory, .. } => Box::new(memory.clone()),
            Memory::Pooled { pointer, .. } => Box::new(pointer.clone()),
            Memory::Host { mapping, .. } => Box::new(mapping.clone()),
        }
    }
}

/// Shared memory as a DLPack tensor: `torch.from_dlpack(shared)` or `numpy.from_dlpack(shared)`
/// gives an array on the same memory, with the shape, dtype and strides the descriptor implies
/// (a buffer: 1-D uint8; a LINEAR image: height x width x channels, rows `row_pitch` bytes
/// apart). The memory stays mapped while this object or any array made from it lives.
#[pyclass(unsendable, module = "extmem")]
pub struct SharedBuffer {
    memory: Memory,
    layout: Layout,
}

impl SharedBuffer {
    /// Wraps received memory.
    pub fn new(memory: Memory, layout: Layout) -> Self {
        SharedBuffer { memory, layout }
    }

    /// A copy of the tensor's bytes in host memory the capsule owns (CPU memory only).
    fn host_copy(&self) -> PyResult<Target> {
        if !matches!(self.memory, Memory::Host { .. }) {
            return Err(PyBufferError::new_err(
                "extmem does not copy device memory; take the tensor without copy and copy it in your framework (tensor.clone())",
            ));
        }
        let (data, _) = self.memory.data();
        let span = self.layout.span_bytes() as usize;
        // u64 words: aligned for every element type the layout can have.
        let mut words = vec![0u64; span.div_ceil(8)].into_boxed_slice();
        // SAFETY: `span` bytes are mapped at `data` (checked by `capsule` against the length) and
        // `words` holds at least `span` bytes; the caller orders this read after the producer.
        unsafe { std::ptr::copy_nonoverlapping(data as *const u8, words.as_mut_ptr().cast::<u8>(), span) };
        let ptr = words.as_mut_ptr().cast::<c_void>();
        Ok(Target { data: ptr, len: span as u64, device: (KDL_CPU, 0), keep: Box::new(words), copied: true })
    }
}

#[pymethods]
impl SharedBuffer {
    /// DLPack: a capsule holding the tensor, `dltensor_versioned` (DLPack 1.0) when
    /// `max_version` is `(1, x)` or later, else the legacy `dltensor`.
    ///
    /// `stream`: for CUDA memory the consumer's stream (`None`/1: the legacy default stream, 2:
    /// per-thread, -1: no synchronisation wanted, 0 is not allowed); nothing is queued on it,
    /// because the frame is ordered by `Consumer.wait_ready(stream=...)`. For CPU memory it must
    /// be `None`. `dl_device`: must be this memory's device (no cross-device copies).
    /// `copy`: `True` copies CPU memory (the capsule then owns the copy); `False` and `None`
    /// never copy.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<i64>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let device = self.memory.device();
        match (device.0, stream) {
            (_, None) => {}
            (KDL_CUDA, Some(0)) => return Err(PyValueError::new_err(
                "stream 0 is ambiguous in DLPack; pass 1 (legacy default stream), 2 (per-thread) or a stream handle",
            )),
            (KDL_CUDA, Some(s)) if s >= -1 => {}
            (KDL_CUDA, Some(s)) => return Err(PyValueError::new_err(format!("{s} is not a CUDA stream"))),
            (_, Some(s)) => return Err(PyValueError::new_err(format!("CPU memory has no streams; got stream {s}"))),
        }
        if let Some(want) = dl_device {
            if want != device {
                return Err(PyBufferError::new_err(format!(
                    "the memory is on DLPack device {device:?}, {want:?} was asked for; extmem does not copy across devices"
                )));
            }
        }
        let target = if copy == Some(true) {
            self.host_copy()?
        } else {
            let (data, len) = self.memory.data();
            Target { data, len, device, keep: self.memory.keep(), copied: false }
        };
        let versioned = max_version.is_some_and(|(major, _)| major >= dlpack::VERSION.0);
        dlpack::capsule(py, target, &self.layout, versioned)
    }

    /// DLPack: `(device type, device id)`: `(1, 0)` (kDLCPU) for host memory, `(2, ordinal)`
    /// (kDLCUDA) for memory imported into CUDA.
    fn __dlpack_device__(&self) -> (i32, i32) {
        self.memory.device()
    }

    /// Bytes the tensor spans.
    fn __len__(&self) -> usize {
        self.layout.span_bytes() as usize
    }

    /// The tensor's shape.
    #[getter]
    fn shape(&self) -> Vec<i64> {
        self.layout.shape.clone()
    }

    /// `"cuda"` or `"cpu"`.
    #[getter]
    fn device(&self) -> &'static str {
        match self.memory {
            Memory::Cuda { .. } | Memory::Exported { .. } | Memory::Pooled { .. } => "cuda",
            Memory::Host { .. } => "cpu",
        }
    }

    /// The address of the first element: a CUDA device pointer, or a host pointer.
    #[getter]
    fn data_ptr(&self) -> u64 {
        self.memory.data().0 as u64
    }

    /// The CUDA device pointer (the same as `data_ptr` for CUDA memory; an error for CPU memory).
    #[getter]
    fn device_ptr(&self) -> PyResult<u64> {
        match &self.memory {
            Memory::Cuda { memory, .. } => Ok(memory.device_ptr()),
            Memory::Exported { memory, .. } => Ok(memory.device_ptr()),
            Memory::Pooled { pointer, .. } => Ok(pointer.device_ptr()),
            Memory::Host { .. } => Err(PyValueError::new_err("host memory has no CUDA device pointer; use data_ptr")),
        }
    }

    fn __repr__(&self) -> String {
        format!("<extmem.SharedBuffer {} shape={:?} at {:#x}>", self.device(), self.layout.shape, self.data_ptr())
    }
}
