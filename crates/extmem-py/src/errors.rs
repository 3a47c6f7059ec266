//! The module's exceptions: a base `extmem.Error` and one subclass per kind of failure the
//! libraries report, so that Python code can catch what it can handle.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(extmem, Error, PyException, "Base class of every error extmem raises.");
create_exception!(extmem, VulkanError, Error, "A Vulkan command failed.");
create_exception!(extmem, LoaderError, Error, "The Vulkan loader (libvulkan.so.1) could not be loaded.");
create_exception!(extmem, NoDeviceError, Error, "No usable Vulkan device.");
create_exception!(extmem, UnsupportedError, Error, "The device, driver or memory cannot do what was asked.");
create_exception!(extmem, LayerError, Error, "The extmem Vulkan layer could not be found or enabled.");
create_exception!(extmem, ImportRefusedError, Error, "An import was refused because it could not work.");
create_exception!(extmem, ProtocolError, Error, "The peer sent a malformed or unexpected message.");
create_exception!(extmem, PeerError, Error, "The peer closed the connection, died, or did not answer in time.");
create_exception!(extmem, EndOfStream, PeerError, "The producer said Bye: no more frames will come.");
create_exception!(extmem, IoError, Error, "A socket, file or mapping operation failed.");
create_exception!(extmem, CudaError, Error, "CUDA is missing, failed, or has no device matching the memory.");
create_exception!(extmem, LayoutError, Error, "The shared memory has no tensor layout (an OPTIMAL image, say).");

/// Converts a library error into the matching exception.
pub trait IntoPy<T> {
    /// The result with its error as a Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, ::extmem::Error> {
    fn py(self) -> PyResult<T> {
        use ::extmem::Error as E;
        self.map_err(|e| {
            let m = e.to_string();
            match e {
                E::Vulkan { .. } => VulkanError::new_err(m),
                E::Loader(_) => LoaderError::new_err(m),
                E::NoDevice(_) => NoDeviceError::new_err(m),
                E::Unsupported(_) => UnsupportedError::new_err(m),
                E::Layer(_) => LayerError::new_err(m),
                E::Import(_) => ImportRefusedError::new_err(m),
                E::Protocol(_) => ProtocolError::new_err(m),
                E::Peer(_) => PeerError::new_err(m),
                E::Io { .. } => IoError::new_err(m),
                // A kind added later: still an extmem.Error.
                _ => Error::new_err(m),
            }
        })
    }
}

impl<T> IntoPy<T> for Result<T, extmem_cuda::Error> {
    fn py(self) -> PyResult<T> {
        use extmem_cuda::Error as E;
        self.map_err(|e| {
            let m = e.to_string();
            match e {
                E::Import(_) => ImportRefusedError::new_err(m),
                E::NoDriver | E::Cuda { .. } | E::NoMatchingDevice(_) => CudaError::new_err(m),
                _ => CudaError::new_err(m),
            }
        })
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("VulkanError", py.get_type::<VulkanError>())?;
    m.add("LoaderError", py.get_type::<LoaderError>())?;
    m.add("NoDeviceError", py.get_type::<NoDeviceError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("LayerError", py.get_type::<LayerError>())?;
    m.add("ImportRefusedError", py.get_type::<ImportRefusedError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    m.add("PeerError", py.get_type::<PeerError>())?;
    m.add("EndOfStream", py.get_type::<EndOfStream>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("CudaError", py.get_type::<CudaError>())?;
    m.add("LayoutError", py.get_type::<LayoutError>())?;
    Ok(())
}
