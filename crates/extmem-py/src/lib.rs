//! `import extmem` in Python: receive memory a Vulkan process shares over the extmem socket and
//! hand it to PyTorch, numpy or any DLPack consumer without a copy: CUDA memory as a kDLCUDA
//! tensor, host memory as a kDLCPU one.
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
//!
//! The compiled module is `extmem._extmem`; `python/extmem/__init__.py` re-exports it. The
//! test helpers are in its private submodule `_testing` (`extmem._testing`).

mod consumer;
mod dlpack;
mod errors;
mod layout;
mod pool_consumer;
mod producer;
mod shared;
mod stream;
mod testing;

use pyo3::prelude::*;

/// The Python module.
#[pymodule]
#[pyo3(name = "_extmem")]
fn extmem_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DLPACK_VERSION", dlpack::VERSION)?;
    m.add_class::<consumer::Consumer>()?;
    m.add_class::<pool_consumer::PoolConsumer>()?;
    m.add_class::<shared::SharedBuffer>()?;
    m.add_class::<producer::Producer>()?;
    testing::register(m)?;
    m.add_class::<stream::StreamSubscriber>()?;
    m.add_class::<stream::StreamFrame>()?;
    m.add_class::<stream::StreamPublisher>()?;
    m.add_class::<stream::PublishFrame>()?;
    m.add_function(wrap_pyfunction!(stream::subscribe, m)?)?;
    m.add_function(wrap_pyfunction!(stream::publish, m)?)?;
    errors::register(m)
}
