//! `extmem.PoolConsumer`: the receiving end of an extmem pool (`extmem::pool`). Each block is
//! imported and mapped into CUDA once; each hand-off is then a tensor at an offset into it,
//! with no driver call.

use crate::errors::{EndOfStream, IntoPy, LayoutError, ProtocolError};
use crate::layout::Layout;
use crate::shared::{Memory, SharedBuffer};
use ::extmem::pool::{protocol, PoolHandle, PooledDesc};
use ::extmem::transport::{Channel, Message};
use ::extmem::{Descriptor, HandleType};
use extmem_cuda::{Cuda, PoolMapper};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A handle on a sub-allocation, as Python sees it: (block, offset, size, generation).
type HandleTuple = (u32, u64, u64, u64);

/// The consuming end of an extmem pool: `receive()` gives the next hand-off as a tensor
/// (DLPack) and tells the producer it is held; `release(handle)` gives it back.
#[pyclass(unsendable, module = "extmem")]
pub struct PoolConsumer {
    channel: Channel,
    cuda: Option<Arc<Cuda>>,
    mapper: PoolMapper,
    held: HashMap<HandleTuple, PoolHandle>,
}

/// What the tensor layout code needs from a pooled hand-off (its own sub-allocation only).
fn as_descriptor(d: &PooledDesc) -> Descriptor {
    Descriptor {
        resource: d.resource,
        handle_type: HandleType::OpaqueFd,
        allocation_size: d.handle.size,
        memory_type_index: 0,
        memory_type_bits: 1,
        dedicated: false,
        offset: 0,
        layout: d.layout,
        device_uuid: [0; 16],
        driver_uuid: [0; 16],
        row_pitch: d.row_pitch,
    }
}

#[pymethods]
impl PoolConsumer {
    /// Connects to the producer's socket (same user only).
    #[new]
    fn new(socket: PathBuf) -> PyResult<Self> {
        let channel = Channel::connect(&socket).py()?;
        Ok(PoolConsumer { channel, cuda: None, mapper: PoolMapper::new(), held: HashMap::new() })
    }

    /// Waits for the next pooled hand-off (importing any new block on the way) and returns
    /// `(handle, buffer)`: `torch.from_dlpack(buffer)` is a tensor on the memory (a buffer:
    /// 1-D uint8; a LINEAR image: height x width x channels). The producer is told it is held.
    /// Raises `extmem.EndOfStream` when the producer says Bye.
    fn receive(&mut self) -> PyResult<(HandleTuple, SharedBuffer)> {
        loop {
            let (message, mut fds) = self.channel.recv().py()?;
            match message {
                Message::PoolBlock(block) => {
                    if self.cuda.is_none() {
                        match Cuda::for_device_uuid(block.device_uuid) {
                            Ok(c) => self.cuda = Some(Arc::new(c)),
                            Err(e) => {
                                // The producer hears why, and no block is kept (its fd closes).
                                let _ = protocol::refused(&self.channel, &::extmem::Error::Import(e.to_string()));
                                return Err(e).py();
                            }
                        }
                    }
                    let fd = fds.pop().ok_or_else(|| ProtocolError::new_err("a pool block without its fd"))?;
                    let cuda = self.cuda.as_ref().expect("set above");
                    if let Err(e) = self.mapper.add_block(cuda, &block, fd) {
                        let _ = protocol::refused(&self.channel, &::extmem::Error::Import(e.to_string()));
                        return Err(e).py();
                    }
                }
                Message::PoolShare(desc) => return self.hold(&desc),
                Message::Bye => return Err(EndOfStream::new_err("the producer said Bye")),
                other => return Err(ProtocolError::new_err(format!("expected a pool message, got {}", other.name()))),
            }
        }
    }

    /// Gives a received sub-allocation back: the producer may reuse it once everyone did.
    /// Finish the GPU work on its tensor first (e.g. `torch.cuda.synchronize()`).
    fn release(&mut self, handle: HandleTuple) -> PyResult<()> {
        let h = self
            .held
            .remove(&handle)
            .ok_or_else(|| ProtocolError::new_err(format!("{handle:?} is not held by this consumer")))?;
        self.mapper.release_handle(&h).py()?;
        protocol::released(&self.channel, &h).py()
    }
}

impl PoolConsumer {
    fn hold(&mut self, desc: &PooledDesc) -> PyResult<(HandleTuple, SharedBuffer)> {
        let refuse = |channel: &Channel, why: String| {
            let _ = protocol::refused(channel, &::extmem::Error::Pool(why.clone()));
            why
        };
        let layout = Layout::of(&as_descriptor(desc)).map_err(|e| LayoutError::new_err(refuse(&self.channel, e)))?;
        let pointer = match self.mapper.hold(desc) {
            Ok(p) => Arc::new(p),
            Err(e) => return Err(crate::errors::CudaError::new_err(refuse(&self.channel, e.to_string()))),
        };
        let device = self.cuda.as_ref().map_or(0, |c| c.ordinal() as i32);
        protocol::held(&self.channel, &desc.handle).py()?;
        let PoolHandle { block, offset, size, generation } = desc.handle;
        let key = (block, offset, size, generation);
        self.held.insert(key, desc.handle);
        Ok((key, SharedBuffer::new(Memory::Pooled { pointer, device }, layout)))
    }
}
