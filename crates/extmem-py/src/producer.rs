//! `extmem.Producer`: the PyTorch-as-producer direction. This process makes CUDA memory
//! exportable (`cuMemCreate` + `cuMemExportToShareableHandle`), shares it with a Vulkan process
//! over the extmem socket, fills frames, and hands each over; the Vulkan side imports it as an
//! opaque fd (NVIDIA only: outside the letter of the Vulkan specification, see
//! `extmem_cuda::export`).

use crate::errors::{CudaError, EndOfStream, ImportRefusedError, IntoPy, ProtocolError};
use crate::layout::Layout;
use crate::shared::{Memory, SharedBuffer};
use ::extmem::frames::{Frame, FrameProtocol, Role};
use ::extmem::transport::{Channel, Message};
use ::extmem::{vk, HandleType};
use extmem_cuda::cudarc::driver::sys;
use extmem_cuda::{Cuda, CudaSemaphore, ExportableMemory};
use pyo3::prelude::*;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

/// The producing end: connects to a Vulkan consumer's socket and shares CUDA memory with it.
#[pyclass(unsendable, module = "extmem")]
pub struct Producer {
    channel: Channel,
    cuda: Option<Arc<Cuda>>,
    semaphore: Option<CudaSemaphore>,
}

#[pymethods]
impl Producer {
    /// Connects to the consumer's socket (same user only).
    #[new]
    fn new(socket: PathBuf) -> PyResult<Self> {
        Ok(Producer { channel: Channel::connect(&socket).py()?, cuda: None, semaphore: None })
    }

    /// Makes `nbytes` of exportable memory on CUDA device `device` (default
    /// `$EXTMEM_CUDA_DEVICE`, else 0), sends it to the consumer, and waits until the consumer has
    /// imported it (and, where it can, shared a timeline semaphore back: CUDA imports semaphores
    /// but cannot export them). Returns it as a 1-D uint8 kDLCUDA tensor for
    /// `torch.from_dlpack`.
    #[pyo3(signature = (nbytes, device=None))]
    fn share(&mut self, nbytes: usize, device: Option<usize>) -> PyResult<SharedBuffer> {
        if self.cuda.is_some() {
            return Err(ProtocolError::new_err("share() was already called on this connection"));
        }
        let ordinal = match device {
            Some(d) => d,
            None => std::env::var("EXTMEM_CUDA_DEVICE").ok().and_then(|v| v.parse().ok()).unwrap_or(0),
        };
        let cuda = Arc::new(Cuda::new(ordinal).py()?);
        let memory = ExportableMemory::new(&cuda, nbytes).py()?;
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let desc = memory.descriptor(usage);
        let fd = memory.export_fd().py()?;
        self.channel.send(&Message::Share(desc), &[fd.as_fd()]).py()?;
        drop(fd);
        loop {
            let (message, mut fds) = self.channel.recv().py()?;
            match message {
                Message::ShareSemaphore => {
                    let fd = fds.pop().ok_or_else(|| ProtocolError::new_err("a semaphore message without its fd"))?;
                    self.semaphore = Some(cuda.import_semaphore(fd).py()?);
                }
                Message::Verdict { ok: true, .. } => break,
                Message::Verdict { ok: false, detail } => {
                    return Err(ImportRefusedError::new_err(format!(
                        "the consumer could not import it: {}",
                        extmem::transport::text::escape(&detail)
                    )))
                }
                other => return Err(ProtocolError::new_err(format!("expected the verdict, got {}", other.name()))),
            }
        }
        let layout = Layout::of(&desc).map_err(crate::errors::LayoutError::new_err)?;
        debug_assert_eq!(desc.handle_type, HandleType::OpaqueFd);
        let device = cuda.ordinal() as i32;
        self.cuda = Some(cuda);
        Ok(SharedBuffer::new(Memory::Exported { memory: Arc::new(memory), device }, layout))
    }

    /// Whether the consumer shared a semaphore (the GPU orders the two sides' work).
    #[getter]
    fn has_semaphore(&self) -> bool {
        self.semaphore.is_some()
    }

    /// Hands frame `frame` to the consumer once the work queued on `stream` so far (a CUDA
    /// stream handle of the device's primary context, e.g.
    /// `torch.cuda.current_stream().cuda_stream`) is done: on the GPU where a semaphore is
    /// shared, else waited for here. Without `stream`, the whole device is waited for.
    #[pyo3(signature = (frame, stream=None))]
    fn ready(&mut self, frame: u64, stream: Option<usize>) -> PyResult<()> {
        let cuda = self.cuda.as_ref().ok_or_else(|| ProtocolError::new_err("ready() before share()"))?;
        match (&self.semaphore, stream) {
            // SAFETY: the caller's stream of the primary context (documented).
            (Some(s), Some(stream)) => {
                unsafe { s.signal_on(stream as sys::CUstream, Frame::new(frame).ready()) }.py()?
            }
            (Some(s), None) => {
                synchronize_device(cuda)?;
                s.signal(cuda, Frame::new(frame).ready()).py()?;
            }
            (None, Some(stream)) => {
                cuda.context().bind_to_thread().map_err(|e| CudaError::new_err(e.to_string()))?;
                // SAFETY: as above.
                unsafe { sys::cuStreamSynchronize(stream as sys::CUstream) }
                    .result()
                    .map_err(|e| CudaError::new_err(format!("cuStreamSynchronize: {e}")))?;
            }
            (None, None) => synchronize_device(cuda)?,
        }
        FrameProtocol::new(&self.channel, Role::Producer).signal_ready(Frame::new(frame)).py()
    }

    /// Waits until the consumer hands frame `frame` back. With `stream` and a shared semaphore,
    /// the work queued on `stream` from now on is ordered after the consumer's on the GPU (no
    /// host wait); otherwise the consumer's work is complete when this returns.
    #[pyo3(signature = (frame, stream=None))]
    fn wait_done(&mut self, frame: u64, stream: Option<usize>) -> PyResult<()> {
        let cuda = self.cuda.as_ref().ok_or_else(|| ProtocolError::new_err("wait_done() before share()"))?;
        match self.channel.recv().py()? {
            (Message::FrameDone { frame: f }, _) if f == frame => {}
            (Message::FrameDone { frame: f }, _) => {
                return Err(ProtocolError::new_err(format!("frame {f} came back, {frame} was expected")))
            }
            (Message::Bye, _) => return Err(EndOfStream::new_err("the consumer said Bye")),
            (other, _) => return Err(ProtocolError::new_err(format!("expected FrameDone, got {}", other.name()))),
        }
        match (&self.semaphore, stream) {
            // SAFETY: the caller's stream of the primary context (documented).
            (Some(s), Some(stream)) => unsafe { s.wait_on(stream as sys::CUstream, Frame::new(frame).done()) }.py(),
            (Some(s), None) => {
                s.wait(cuda, Frame::new(frame).done()).py()?;
                cuda.synchronize().py()
            }
            (None, _) => Ok(()),
        }
    }

    /// Tells the consumer there are no more frames.
    fn bye(&mut self) -> PyResult<()> {
        self.channel.send(&Message::Bye, &[]).py()
    }
}

/// Waits for all work on the device's primary context (torch's streams included).
fn synchronize_device(cuda: &Cuda) -> PyResult<()> {
    cuda.context().bind_to_thread().map_err(|e| CudaError::new_err(e.to_string()))?;
    // SAFETY: a plain wait on the current context.
    unsafe { sys::cuCtxSynchronize() }.result().map_err(|e| CudaError::new_err(format!("cuCtxSynchronize: {e}")))
}
