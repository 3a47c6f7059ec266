//! `extmem.Consumer`: the receiving end of the frame protocol over the extmem socket.

use crate::errors::{CudaError, EndOfStream, IntoPy, ProtocolError, UnsupportedError};
use crate::layout::Layout;
use crate::shared::{Memory, SharedBuffer};
use ::extmem::frames::{Frame, FrameProtocol, Role};
use ::extmem::host::HostMapping;
use ::extmem::transport::{Channel, Message};
use ::extmem::{HandleType, ResourceDesc};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::{Cuda, CudaSemaphore};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// The consuming end of an extmem hand-off: connects to a producer's socket, receives shared
/// memory, and follows the frame protocol (`wait_ready` / `done`).
#[pyclass(unsendable, module = "extmem")]
pub struct Consumer {
    channel: Channel,
    cuda: Option<Arc<Cuda>>,
    semaphore: Option<CudaSemaphore>,
    /// The memory was received for the CPU (no CUDA involved).
    cpu: bool,
}

#[pymethods]
impl Consumer {
    /// Connects to the producer's socket (same user only).
    #[new]
    fn new(socket: PathBuf) -> PyResult<Self> {
        Ok(Consumer { channel: Channel::connect(&socket).py()?, cuda: None, semaphore: None, cpu: false })
    }

    /// Waits for shared memory and returns it as a DLPack producer.
    ///
    /// `device="cuda"` (default) imports it into CUDA (an opaque fd, or host memory registered
    /// with CUDA). `device="cpu"` maps host memory (a producer sharing
    /// `HandleType::HostAllocation`, e.g. `extmem demo --consumer numpy`) into this process: the
    /// result is a kDLCPU tensor for `numpy.from_dlpack`.
    #[pyo3(signature = (device="cuda"))]
    fn receive(&mut self, device: &str) -> PyResult<SharedBuffer> {
        if self.cuda.is_some() || self.cpu {
            return Err(ProtocolError::new_err("receive() was already called on this connection"));
        }
        let (desc, fd) = self.channel.recv_share().py()?;
        let layout = Layout::of(&desc).map_err(crate::errors::LayoutError::new_err)?;
        let (memory, detail) = match device {
            "cpu" => {
                if desc.handle_type != HandleType::HostAllocation {
                    return Err(UnsupportedError::new_err(format!(
                        "the CPU can map only host memory, and this is {}: the producer must share a buffer in host memory (extmem demo --consumer numpy, or --memory host)",
                        desc.handle_type
                    )));
                }
                let ResourceDesc::Buffer(b) = desc.resource else {
                    return Err(UnsupportedError::new_err("host memory holds buffers only"));
                };
                if desc.offset.checked_add(b.size).is_none_or(|end| end > desc.allocation_size) {
                    return Err(ProtocolError::new_err(format!(
                        "a {}-byte buffer at offset {} of {} bytes",
                        b.size, desc.offset, desc.allocation_size
                    )));
                }
                let mapping = HostMapping::open(fd, desc.allocation_size as usize).py()?;
                self.cpu = true;
                (Memory::Host { mapping: Arc::new(mapping), offset: desc.offset }, "mapped for the CPU (Python)")
            }
            "cuda" => {
                let cuda = Arc::new(Cuda::for_descriptor(&desc).py()?);
                let memory = cuda.import_memory(&desc, fd).py()?;
                let device = cuda.ordinal() as i32;
                self.cuda = Some(cuda);
                (Memory::Cuda { memory: Arc::new(memory), device }, "imported into CUDA (Python)")
            }
            other => return Err(PyValueError::new_err(format!("device must be \"cuda\" or \"cpu\", not {other:?}"))),
        };
        self.channel.send(&Message::Verdict { ok: true, detail: detail.into() }, &[]).py()?;
        Ok(SharedBuffer::new(memory, layout))
    }

    /// Waits until the producer's next frame is complete and returns its number; raises
    /// `extmem.EndOfStream` when the producer says Bye.
    ///
    /// CPU memory may be read and written from when this returns until `done(frame)`: the
    /// producer sends the frame-ready message only after its fence signalled, and does not
    /// touch the memory again before it has the frame back.
    ///
    /// CUDA memory: with `stream` (a CUDA stream handle of the device's primary context, e.g.
    /// `torch.cuda.current_stream().cuda_stream`) and a shared semaphore, the work queued on that
    /// stream from now on is ordered after the frame on the GPU, and no host thread waits.
    #[pyo3(signature = (stream=None))]
    fn wait_ready(&mut self, stream: Option<usize>) -> PyResult<u64> {
        loop {
            let (message, mut fds) = self.channel.recv().py()?;
            match message {
                Message::ShareSemaphore => {
                    let Some(cuda) = &self.cuda else {
                        return Err(UnsupportedError::new_err(if self.cpu {
                            "the producer shared a GPU semaphore, which the CPU cannot wait for; run the producer with host synchronisation (extmem demo --sync host)"
                        } else {
                            "the producer shared a semaphore before any memory"
                        }));
                    };
                    let fd = fds.pop().ok_or_else(|| ProtocolError::new_err("a semaphore message without its fd"))?;
                    self.semaphore = Some(cuda.import_semaphore(fd).py()?);
                }
                Message::FrameReady { frame } => {
                    if self.cpu {
                        return Ok(frame);
                    }
                    let cuda = self.cuda.as_ref().ok_or_else(|| ProtocolError::new_err("a frame before any memory"))?;
                    match (&self.semaphore, stream) {
                        // SAFETY: the caller's stream of the primary context (documented).
                        (Some(s), Some(stream)) => {
                            unsafe { s.wait_on(stream as sys::CUstream, Frame::new(frame).ready()) }.py()?
                        }
                        (Some(s), None) => {
                            s.wait(cuda, Frame::new(frame).ready()).py()?;
                            cuda.synchronize().py()?;
                        }
                        // Host-synchronised: the producer's fence completed before FrameReady.
                        (None, _) => {}
                    }
                    return Ok(frame);
                }
                Message::Bye => return Err(EndOfStream::new_err("the producer said Bye")),
                other => return Err(ProtocolError::new_err(format!("expected FrameReady, got {}", other.name()))),
            }
        }
    }

    /// Hands frame `frame` back to the producer. CPU memory: after your last access to it. CUDA
    /// memory, with `stream`: once the work queued on it so far is done (on the GPU where a
    /// semaphore is shared, else waited for here). Without `stream`, call
    /// `torch.cuda.synchronize()` first (or otherwise finish the work that used the tensor).
    #[pyo3(signature = (frame, stream=None))]
    fn done(&mut self, frame: u64, stream: Option<usize>) -> PyResult<()> {
        if !self.cpu {
            let cuda = self.cuda.as_ref().ok_or_else(|| ProtocolError::new_err("done() before receive()"))?;
            match (&self.semaphore, stream) {
                // SAFETY: the caller's stream of the primary context (documented).
                (Some(s), Some(stream)) => {
                    unsafe { s.signal_on(stream as sys::CUstream, Frame::new(frame).done()) }.py()?
                }
                (Some(s), None) => {
                    s.signal(cuda, Frame::new(frame).done()).py()?;
                    cuda.synchronize().py()?;
                }
                (None, Some(stream)) => {
                    cuda.context().bind_to_thread().map_err(|e| CudaError::new_err(e.to_string()))?;
                    // SAFETY: as above.
                    unsafe { sys::cuStreamSynchronize(stream as sys::CUstream) }
                        .result()
                        .map_err(|e| CudaError::new_err(format!("cuStreamSynchronize: {e}")))?;
                }
                (None, None) => {}
            }
        }
        FrameProtocol::new(&self.channel, Role::Consumer).signal_done(Frame::new(frame)).py()
    }

    /// Waits for the producer's Bye (the end of the stream).
    fn wait_bye(&mut self) -> PyResult<()> {
        match self.channel.recv().py()? {
            (Message::Bye, _) => Ok(()),
            (other, _) => Err(ProtocolError::new_err(format!("expected Bye, got {}", other.name()))),
        }
    }
}
