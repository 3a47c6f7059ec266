//! `import extmem` in Python: receive memory a Vulkan process shares over the extmem socket,
//! import it into CUDA, and hand it to PyTorch (or any DLPack consumer) without a copy.
//!
//! ```python
//! import torch, extmem
//! consumer = extmem.Consumer("/run/user/0/extmem/demo.sock")
//! shared = consumer.receive()              # import into CUDA, zero-copy
//! tensor = torch.from_dlpack(shared)       # 1-D uint8 CUDA tensor on the same memory
//! s = torch.cuda.current_stream().cuda_stream
//! frame = consumer.wait_ready(stream=s)    # torch's later work on s sees the whole frame
//! ...                                      # use tensor on s (view it as (h, w, 4), ...)
//! consumer.done(frame, stream=s)           # handed back once s's work so far is done
//! ```
//!
//! Synchronisation: `wait_ready` waits for the producer's message. Where a timeline semaphore
//! was shared, it makes the given stream wait for it on the GPU and returns at once (no host
//! wait); `done` signals the semaphore on that stream after the work queued so far, and tells
//! the producer, whose GPU waits for the value. Without a semaphore (the producer waited for
//! its own fence before saying ready), `done` waits on the host for the stream (through CUDA,
//! the API that did the work). Without `stream`, both use the module's own stream and wait
//! for it on the host: call `torch.cuda.synchronize()` before `done`.

mod dlpack;

use ::extmem::frames::{Frame, FrameProtocol, Role};
use ::extmem::transport::{Channel, Message};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::{Cuda, CudaMemory, CudaSemaphore};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

fn err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// The consuming end of an extmem hand-off.
#[pyclass(unsendable)]
struct Consumer {
    channel: Channel,
    cuda: Option<Arc<Cuda>>,
    semaphore: Option<CudaSemaphore>,
}

#[pymethods]
impl Consumer {
    /// Connects to the producer's socket (same user only).
    #[new]
    fn new(socket: PathBuf) -> PyResult<Self> {
        Ok(Consumer { channel: Channel::connect(&socket).map_err(err)?, cuda: None, semaphore: None })
    }

    /// Waits for shared memory (and a semaphore, if the producer sends one right after it),
    /// imports it into CUDA, and returns it as a DLPack-capable object.
    fn receive(&mut self) -> PyResult<SharedBuffer> {
        let (desc, fd) = self.channel.recv_share().map_err(err)?;
        let layout = dlpack::Layout::of(&desc).map_err(PyValueError::new_err)?;
        let cuda = match &self.cuda {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(Cuda::for_descriptor(&desc).map_err(err)?);
                self.cuda = Some(c.clone());
                c
            }
        };
        let memory = cuda.import_memory(&desc, fd).map_err(err)?;
        self.channel
            .send(&Message::Verdict { ok: true, detail: "imported into CUDA (Python)".into() }, &[])
            .map_err(err)?;
        Ok(SharedBuffer { memory: Arc::new(memory), layout, device: cuda.ordinal() as i32 })
    }

    /// Waits until the producer's next frame is complete; returns its number. With `stream`
    /// (a CUDA stream handle of the device's primary context, e.g.
    /// `torch.cuda.current_stream().cuda_stream`), the work queued on it from now on is
    /// ordered after the frame on the GPU, and no host thread waits for the GPU.
    #[pyo3(signature = (stream=None))]
    fn wait_ready(&mut self, stream: Option<usize>) -> PyResult<u64> {
        loop {
            let (message, mut fds) = self.channel.recv().map_err(err)?;
            match message {
                Message::ShareSemaphore => {
                    let cuda = self.cuda.as_ref().ok_or_else(|| PyRuntimeError::new_err("semaphore before memory"))?;
                    let fd = fds.pop().expect("checked by recv");
                    self.semaphore = Some(cuda.import_semaphore(fd).map_err(err)?);
                }
                Message::FrameReady { frame } => {
                    let cuda = self.cuda.as_ref().ok_or_else(|| PyRuntimeError::new_err("frame before memory"))?;
                    match (&self.semaphore, stream) {
                        // SAFETY: the caller's stream of the primary context (documented).
                        (Some(s), Some(stream)) => {
                            unsafe { s.wait_on(stream as sys::CUstream, Frame::new(frame).ready()) }.map_err(err)?
                        }
                        (Some(s), None) => {
                            s.wait(cuda, Frame::new(frame).ready()).map_err(err)?;
                            cuda.synchronize().map_err(err)?;
                        }
                        // Host-synchronised: the producer's fence completed before FrameReady.
                        (None, _) => {}
                    }
                    return Ok(frame);
                }
                Message::Bye => return Err(PyRuntimeError::new_err("the producer said Bye")),
                other => return Err(PyRuntimeError::new_err(format!("unexpected {}", other.name()))),
            }
        }
    }

    /// Hands frame `frame` back to the producer. With `stream`, once the work queued on it so
    /// far is done (on the GPU where a semaphore is shared, else waited for here). Without,
    /// call `torch.cuda.synchronize()` first (or otherwise finish the work that used the
    /// tensor).
    #[pyo3(signature = (frame, stream=None))]
    fn done(&mut self, frame: u64, stream: Option<usize>) -> PyResult<()> {
        let cuda = self.cuda.as_ref().ok_or_else(|| PyRuntimeError::new_err("done before memory"))?;
        match (&self.semaphore, stream) {
            // SAFETY: the caller's stream of the primary context (documented).
            (Some(s), Some(stream)) => {
                unsafe { s.signal_on(stream as sys::CUstream, Frame::new(frame).done()) }.map_err(err)?
            }
            (Some(s), None) => {
                s.signal(cuda, Frame::new(frame).done()).map_err(err)?;
                cuda.synchronize().map_err(err)?;
            }
            (None, Some(stream)) => {
                cuda.context().bind_to_thread().map_err(err)?;
                // SAFETY: as above.
                unsafe { sys::cuStreamSynchronize(stream as sys::CUstream) }.result().map_err(err)?;
            }
            (None, None) => {}
        }
        FrameProtocol::new(&self.channel, Role::Consumer).signal_done(Frame::new(frame)).map_err(err)
    }

    /// Waits for the producer's Bye (the end of the stream).
    fn wait_bye(&mut self) -> PyResult<()> {
        match self.channel.recv().map_err(err)? {
            (Message::Bye, _) => Ok(()),
            (other, _) => Err(PyRuntimeError::new_err(format!("expected Bye, got {}", other.name()))),
        }
    }
}

/// Shared memory imported into CUDA: `torch.from_dlpack(shared)` gives a tensor on it, with
/// the shape, dtype and strides the descriptor implies (a buffer: 1-D uint8; a LINEAR image:
/// height x width x channels, rows `row_pitch` bytes apart). The memory stays imported while
/// this object or any tensor made from it lives.
#[pyclass(unsendable)]
struct SharedBuffer {
    memory: Arc<CudaMemory>,
    layout: dlpack::Layout,
    device: i32,
}

#[pymethods]
impl SharedBuffer {
    /// DLPack: a capsule holding a `DLManagedTensor` (1-D uint8 on the CUDA device).
    #[pyo3(signature = (stream=None))]
    fn __dlpack__(&self, py: Python<'_>, stream: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        let _ = stream; // the memory is ready when `wait_ready` returns: no stream to order after
        dlpack::capsule(py, self.memory.clone(), &self.layout, self.device)
    }

    /// DLPack: (kDLCUDA, device ordinal).
    fn __dlpack_device__(&self) -> (i32, i32) {
        (dlpack::KDL_CUDA, self.device)
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

    /// The CUDA device pointer.
    #[getter]
    fn device_ptr(&self) -> u64 {
        self.memory.device_ptr()
    }
}

/// `len` bytes of extmem's check pattern for `seed` (what the demo's producer writes).
#[pyfunction]
fn pattern(py: Python<'_>, len: usize, seed: u64) -> Py<pyo3::types::PyBytes> {
    pyo3::types::PyBytes::new(py, &::extmem::pattern::fill(len, seed)).unbind()
}

/// The seed the consumer writes back for `frame` in the demo.
#[pyfunction]
fn writeback_seed(frame: u64) -> u64 {
    ::extmem::pattern::writeback_seed(frame)
}

/// The Python module.
#[pymodule]
#[pyo3(name = "extmem")]
fn extmem_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Consumer>()?;
    m.add_class::<SharedBuffer>()?;
    m.add_function(wrap_pyfunction!(pattern, m)?)?;
    m.add_function(wrap_pyfunction!(writeback_seed, m)?)?;
    Ok(())
}
