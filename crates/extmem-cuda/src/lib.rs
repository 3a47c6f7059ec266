//! Zero-copy from Vulkan to CUDA: memory that extmem exported (an opaque fd and its
//! [`Descriptor`]) becomes a CUDA device pointer with the right offset and size, and an exported
//! timeline semaphore (or a binary one, where the device cannot share timelines) becomes a CUDA
//! external semaphore that streams wait on and signal.
//!
//! The CUDA driver is loaded at run time (`cudarc`'s dynamic loading): the crate builds and its
//! tests compile without CUDA, and [`available`] says whether it can be used.
//!
//! Descriptor ownership follows the CUDA documentation: a successful import passes the fd to
//! the CUDA driver; on failure this crate closes it. Nothing is closed twice.

pub use cudarc;
use cudarc::driver::{sys, CudaContext, CudaStream, DriverError};
use extmem::sync::SemaphoreKind;
use extmem::{Descriptor, ResourceDesc};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;

mod counter;
pub mod export;
pub mod ipc;
mod memory;
pub mod multi_gpu;
pub mod pool;
mod semaphore;
pub use counter::CounterWait;
pub use export::ExportableMemory;
pub use ipc::{DeviceAllocation, IpcMapping};
use memory::Backing;
pub use memory::CudaMemory;
pub use multi_gpu::{HostStaging, PeerImport};
pub use pool::{PoolMapper, PooledPointer};
pub use semaphore::CudaSemaphore;

/// Why a CUDA operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No CUDA driver library (libcuda.so) could be loaded.
    #[error("the CUDA driver (libcuda.so.1) is not installed or not loadable")]
    NoDriver,
    /// A CUDA call failed.
    #[error("{call} failed: {source}")]
    Cuda {
        /// The call.
        call: &'static str,
        /// The driver's error.
        source: DriverError,
    },
    /// The Vulkan device is not one CUDA sees.
    #[error("{0}")]
    NoMatchingDevice(String),
    /// The descriptor cannot be imported into CUDA.
    #[error("import refused: {0}")]
    Import(String),
    /// The memory is on another GPU than the consumer's (the message names both UUIDs).
    #[error("{0}")]
    OtherGpu(String),
    /// Imported memory is not on the GPU its descriptor names.
    #[error("{0}")]
    WrongDevice(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

trait CuCall<T> {
    fn cu(self, call: &'static str) -> Result<T>;
}
impl<T> CuCall<T> for std::result::Result<T, DriverError> {
    fn cu(self, call: &'static str) -> Result<T> {
        self.map_err(|source| Error::Cuda { call, source })
    }
}

/// Whether the CUDA driver library can be loaded here.
pub fn available() -> bool {
    // SAFETY: only tries to open the library.
    unsafe { sys::is_culib_present() }
}

fn hex(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}

/// The UUIDs of every CUDA device, by ordinal.
pub fn device_uuids() -> Result<Vec<[u8; 16]>> {
    if !available() {
        return Err(Error::NoDriver);
    }
    cudarc::driver::result::init().cu("cuInit")?;
    let n = CudaContext::device_count().cu("cuDeviceGetCount")?;
    (0..n)
        .map(|i| {
            let dev = cudarc::driver::result::device::get(i).cu("cuDeviceGet")?;
            let mut uuid = sys::CUuuid { bytes: [0; 16] };
            // SAFETY: a valid device and output.
            unsafe { sys::cuDeviceGetUuid_v2(&mut uuid, dev) }.result().cu("cuDeviceGetUuid")?;
            Ok(uuid.bytes.map(|b| b as u8))
        })
        .collect()
}

/// A CUDA context on the device that a Vulkan device is, with a stream of its own.
pub struct Cuda {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    uuid: [u8; 16],
}

impl Cuda {
    /// The CUDA device whose UUID is `device_uuid` (a Vulkan `deviceUUID`). When none is, the
    /// error lists the CUDA devices and says how to pick the matching Vulkan device.
    pub fn for_device_uuid(device_uuid: [u8; 16]) -> Result<Cuda> {
        let uuids = device_uuids()?;
        let Some(ordinal) = uuids.iter().position(|u| *u == device_uuid) else {
            let list: Vec<String> =
                uuids.iter().enumerate().map(|(i, u)| format!("CUDA device {i}: {}", hex(u))).collect();
            return Err(Error::NoMatchingDevice(format!(
                "the Vulkan device (UUID {}) is not a CUDA device; {}. Pick the Vulkan device with the same UUID \
                 (EXTMEM_DEVICE=N, see `extmem caps`)",
                hex(&device_uuid),
                if list.is_empty() { "CUDA sees no device".into() } else { list.join(", ") }
            )));
        };
        Self::new(ordinal)
    }

    /// CUDA device `ordinal` (its primary context, as PyTorch uses), with a stream of its own.
    pub fn new(ordinal: usize) -> Result<Cuda> {
        let uuids = device_uuids()?;
        let Some(&uuid) = uuids.get(ordinal) else {
            return Err(Error::NoMatchingDevice(format!(
                "there is no CUDA device {ordinal}: CUDA sees {}",
                uuids.len()
            )));
        };
        let ctx = CudaContext::new(ordinal).cu("cuCtxCreate")?;
        let stream = ctx.new_stream().cu("cuStreamCreate")?;
        Ok(Cuda { ctx, stream, uuid })
    }

    /// The CUDA device for memory described by `desc`: the one whose UUID it names; for host
    /// memory, which any device can map, device `$EXTMEM_CUDA_DEVICE` (default 0).
    pub fn for_descriptor(desc: &Descriptor) -> Result<Cuda> {
        if desc.handle_type != extmem::HandleType::HostAllocation {
            return Self::for_device_uuid(desc.device_uuid);
        }
        let ordinal = match std::env::var("EXTMEM_CUDA_DEVICE") {
            Ok(v) => v
                .parse()
                .map_err(|_| Error::NoMatchingDevice(format!("EXTMEM_CUDA_DEVICE={v:?} is not a device number")))?,
            Err(_) => 0,
        };
        Self::new(ordinal)
    }

    /// The CUDA device of an extmem Vulkan context.
    pub fn for_vulkan(vk: &extmem::Context) -> Result<Cuda> {
        Self::for_device_uuid(vk.device_uuid())
    }

    /// The context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    /// The stream every operation of this crate runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
    /// The CUDA device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }
    /// The device's UUID.
    pub fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Imports exported Vulkan memory as a device pointer at the resource's offset, covering the
    /// buffer (or, for an image, the rest of the allocation). Dedicated allocations are imported
    /// with `CUDA_EXTERNAL_MEMORY_DEDICATED`, as CUDA requires.
    ///
    /// Host-allocation memory (a memfd, see `extmem::host`) is mapped and registered with
    /// `cuMemHostRegister` instead: CUDA then reads and writes the host pages over the bus,
    /// whichever device made them.
    pub fn import_memory(&self, desc: &Descriptor, fd: OwnedFd) -> Result<CudaMemory> {
        if desc.handle_type == extmem::HandleType::HostAllocation {
            return self.import_host_memory(desc, fd);
        }
        if desc.handle_type != extmem::HandleType::OpaqueFd {
            return Err(Error::Import(format!("CUDA imports opaque fds and host memory, not {}", desc.handle_type)));
        }
        if desc.device_uuid != self.uuid {
            return Err(multi_gpu::other_gpu(
                &desc.device_uuid,
                &self.uuid,
                "an opaque fd imports only on the GPU that made it. Import on that GPU and copy peer to peer \
                 (Cuda::import_memory_peer, `extmem demo --cuda --peer-copy`), or share host memory",
            ));
        }
        let len = match desc.resource {
            ResourceDesc::Buffer(b) => b.size,
            ResourceDesc::Image(_) => desc.allocation_size - desc.offset,
            other => return Err(Error::Import(format!("CUDA cannot map {other:?} (only buffers and images)"))),
        };
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        let handle = sys::CUDA_EXTERNAL_MEMORY_HANDLE_DESC {
            type_: sys::CUexternalMemoryHandleType::CU_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD,
            handle: sys::CUDA_EXTERNAL_MEMORY_HANDLE_DESC_st__bindgen_ty_1 { fd: fd.as_raw_fd() },
            size: desc.allocation_size,
            flags: if desc.dedicated { sys::CUDA_EXTERNAL_MEMORY_DEDICATED } else { 0 },
            reserved: [0; 16],
        };
        let mut ext = std::mem::MaybeUninit::uninit();
        // SAFETY: a valid handle description; `fd` stays open during the call.
        unsafe { sys::cuImportExternalMemory(ext.as_mut_ptr(), &handle) }.result().cu("cuImportExternalMemory")?;
        // Imported: the CUDA driver owns the descriptor now. (On failure `fd` was closed by
        // the `?` above dropping it.)
        let _ = fd.into_raw_fd();
        // SAFETY: initialised by the successful call.
        let ext = unsafe { ext.assume_init() };
        let buffer =
            sys::CUDA_EXTERNAL_MEMORY_BUFFER_DESC { offset: desc.offset, size: len, flags: 0, reserved: [0; 16] };
        let mut ptr = 0;
        // SAFETY: a live external memory object; the range lies in the allocation.
        let mapped = unsafe { sys::cuExternalMemoryGetMappedBuffer(&mut ptr, ext, &buffer) }.result();
        if let Err(e) = mapped {
            // SAFETY: imported above, nothing mapped from it.
            unsafe { sys::cuDestroyExternalMemory(ext) };
            return Err(Error::Cuda { call: "cuExternalMemoryGetMappedBuffer", source: e });
        }
        Ok(CudaMemory { ctx: self.ctx.clone(), backing: Backing::External(ext), ptr, len: len as usize })
    }

    fn import_host_memory(&self, desc: &Descriptor, fd: OwnedFd) -> Result<CudaMemory> {
        let ResourceDesc::Buffer(buffer) = desc.resource else {
            return Err(Error::Import("host memory comes as a buffer".into()));
        };
        if desc.offset != 0 || buffer.size > desc.allocation_size {
            return Err(Error::Import(format!(
                "a {}-byte buffer at offset {} of {} bytes of host memory",
                buffer.size, desc.offset, desc.allocation_size
            )));
        }
        let len = usize::try_from(desc.allocation_size)
            .map_err(|_| Error::Import("too large for this address space".into()))?;
        let mapping = extmem::host::HostMapping::open(fd, len).map_err(|e| Error::Import(e.to_string()))?;
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        let flags = sys::CU_MEMHOSTREGISTER_PORTABLE | sys::CU_MEMHOSTREGISTER_DEVICEMAP;
        // SAFETY: a live mapping of `len` bytes, unregistered before it is unmapped (Drop).
        unsafe { sys::cuMemHostRegister_v2(mapping.ptr(), len, flags) }.result().cu("cuMemHostRegister")?;
        let mut ptr = 0;
        // SAFETY: registered just above with DEVICEMAP.
        if let Err(e) = unsafe { sys::cuMemHostGetDevicePointer_v2(&mut ptr, mapping.ptr(), 0) }.result() {
            // SAFETY: registered above, used by nothing yet.
            unsafe { sys::cuMemHostUnregister(mapping.ptr()) };
            return Err(Error::Cuda { call: "cuMemHostGetDevicePointer", source: e });
        }
        Ok(CudaMemory { ctx: self.ctx.clone(), backing: Backing::Host(mapping), ptr, len: buffer.size as usize })
    }

    /// Imports an exported Vulkan timeline semaphore (opaque fd).
    pub fn import_semaphore(&self, fd: OwnedFd) -> Result<CudaSemaphore> {
        self.import_semaphore_as(fd, SemaphoreKind::Timeline)
    }

    /// Imports an exported Vulkan semaphore of `kind` (opaque fd). A binary one is the fallback
    /// where the device cannot share timelines: each signal is consumed by one wait, and a
    /// signal must be queued before the wait that consumes it; the values given to
    /// [`CudaSemaphore::wait`] and [`CudaSemaphore::signal`] are then ignored.
    pub fn import_semaphore_as(&self, fd: OwnedFd, kind: SemaphoreKind) -> Result<CudaSemaphore> {
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        let type_ = match kind {
            SemaphoreKind::Timeline => {
                sys::CUexternalSemaphoreHandleType::CU_EXTERNAL_SEMAPHORE_HANDLE_TYPE_TIMELINE_SEMAPHORE_FD
            }
            SemaphoreKind::Binary => sys::CUexternalSemaphoreHandleType::CU_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD,
            other => return Err(Error::Import(format!("CUDA cannot import a {} semaphore", other.name()))),
        };
        let handle = sys::CUDA_EXTERNAL_SEMAPHORE_HANDLE_DESC {
            type_,
            handle: sys::CUDA_EXTERNAL_SEMAPHORE_HANDLE_DESC_st__bindgen_ty_1 { fd: fd.as_raw_fd() },
            flags: 0,
            reserved: [0; 16],
        };
        let mut sem = std::mem::MaybeUninit::uninit();
        // SAFETY: a valid handle description; `fd` stays open during the call.
        unsafe { sys::cuImportExternalSemaphore(sem.as_mut_ptr(), &handle) }
            .result()
            .cu("cuImportExternalSemaphore")?;
        let _ = fd.into_raw_fd(); // owned by the CUDA driver now
                                  // SAFETY: initialised by the successful call.
        Ok(CudaSemaphore { ctx: self.ctx.clone(), sem: unsafe { sem.assume_init() }, kind })
    }

    /// Waits on the host for this crate's stream (a wait through the API that did the work).
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().cu("cuStreamSynchronize")
    }
}
