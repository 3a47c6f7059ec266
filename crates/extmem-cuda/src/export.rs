//! CUDA memory that other APIs import: the reverse direction, where a CUDA (PyTorch) process
//! fills memory that Vulkan then uses without a copy.
//!
//! The memory is made exportable from the start (`cuMemCreate` with
//! `CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR`), mapped into the context's address space
//! (`cuMemAddressReserve` + `cuMemMap` + `cuMemSetAccess`), and exported as a POSIX file
//! descriptor (`cuMemExportToShareableHandle`), as CUDA's simpleVulkanMMAP sample does. Vulkan
//! imports that fd as `VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT` on the same device: this
//! works with NVIDIA's drivers but is outside the letter of the Vulkan specification, which
//! defines opaque fds for memory that Vulkan (or an API with matching UUIDs) exported.

use crate::{CuCall, Cuda, Error, Result};
use cudarc::driver::{sys, CudaContext};
use extmem::{vk, BufferDesc, Descriptor, HandleType, ResourceDesc};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

/// Exportable device memory of one CUDA device, mapped at [`ExportableMemory::device_ptr`].
/// Dropping it unmaps it and releases CUDA's handle; an importer's own reference keeps the
/// physical memory alive until it lets go.
pub struct ExportableMemory {
    ctx: Arc<CudaContext>,
    handle: sys::CUmemGenericAllocationHandle,
    ptr: sys::CUdeviceptr,
    size: usize,
    len: usize,
    device_uuid: [u8; 16],
}

fn properties(ordinal: i32) -> sys::CUmemAllocationProp {
    // SAFETY: a plain C struct for which all-zero is a valid (empty) value.
    let mut prop: sys::CUmemAllocationProp = unsafe { std::mem::zeroed() };
    prop.type_ = sys::CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.requestedHandleTypes = sys::CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    prop.location.type_ = sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = ordinal;
    prop
}

impl ExportableMemory {
    /// `len` bytes on `cuda`'s device (rounded up to the allocation granularity), readable and
    /// writable from its context.
    pub fn new(cuda: &Cuda, len: usize) -> Result<ExportableMemory> {
        if len == 0 {
            return Err(Error::Import("an exportable allocation of 0 bytes".into()));
        }
        let ctx = cuda.context().clone();
        ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        use sys::CUdevice_attribute as A;
        for (attribute, what) in [
            (A::CU_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED, "virtual memory management (cuMemCreate)"),
            (A::CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, "POSIX file descriptor export"),
        ] {
            if ctx.attribute(attribute).cu("cuDeviceGetAttribute")? == 0 {
                return Err(Error::Import(format!("CUDA device {} has no {what}", cuda.ordinal())));
            }
        }
        let prop = properties(cuda.ordinal() as i32);
        let mut granularity = 0usize;
        // SAFETY: valid pointers to a property struct and an output.
        unsafe {
            sys::cuMemGetAllocationGranularity(
                &mut granularity,
                &prop,
                sys::CUmemAllocationGranularity_flags::CU_MEM_ALLOC_GRANULARITY_MINIMUM,
            )
        }
        .result()
        .cu("cuMemGetAllocationGranularity")?;
        let size = len.div_ceil(granularity.max(1)) * granularity.max(1);
        let mut handle = 0;
        // SAFETY: as above; the handle is released on drop (or below on failure).
        unsafe { sys::cuMemCreate(&mut handle, size, &prop, 0) }.result().cu("cuMemCreate (POSIX fd exportable)")?;
        let mut this = ExportableMemory { ctx, handle, ptr: 0, size, len, device_uuid: cuda.uuid() };
        let mut ptr = 0;
        // SAFETY: reserves `size` bytes of address space, freed on drop.
        unsafe { sys::cuMemAddressReserve(&mut ptr, size, granularity, 0, 0) }.result().cu("cuMemAddressReserve")?;
        this.ptr = ptr; // unmapped (an error, ignored) and freed on drop from here on
                        // SAFETY: maps the whole allocation at the reserved range.
        unsafe { sys::cuMemMap(ptr, size, 0, handle, 0) }.result().cu("cuMemMap")?;
        let access = sys::CUmemAccessDesc {
            location: prop.location,
            flags: sys::CUmemAccess_flags::CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
        };
        // SAFETY: the mapped range; one access descriptor.
        unsafe { sys::cuMemSetAccess(ptr, size, &access, 1) }.result().cu("cuMemSetAccess")?;
        Ok(this)
    }

    /// The device pointer.
    pub fn device_ptr(&self) -> sys::CUdeviceptr {
        self.ptr
    }

    /// The bytes asked for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes were asked for (never: `new` refuses that).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The allocation's size (a multiple of the granularity).
    pub fn allocation_size(&self) -> usize {
        self.size
    }

    /// Copies the first `bytes.len()` bytes in from the host on `cuda`'s stream and waits.
    pub fn from_host(&self, cuda: &Cuda, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.len {
            return Err(Error::Import(format!("{} bytes into a {}-byte allocation", bytes.len(), self.len)));
        }
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: the range is mapped and `bytes` outlives the wait below.
        unsafe { sys::cuMemcpyHtoDAsync_v2(self.ptr, bytes.as_ptr().cast(), bytes.len(), cuda.stream().cu_stream()) }
            .result()
            .cu("cuMemcpyHtoDAsync")?;
        cuda.synchronize()
    }

    /// Copies the `len()` bytes to the host on `cuda`'s stream and waits.
    pub fn to_host(&self, cuda: &Cuda) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.len];
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        // SAFETY: `out` holds `len` bytes; the range is mapped; we wait before returning.
        unsafe { sys::cuMemcpyDtoHAsync_v2(out.as_mut_ptr().cast(), self.ptr, self.len, cuda.stream().cu_stream()) }
            .result()
            .cu("cuMemcpyDtoHAsync")?;
        cuda.synchronize()?;
        Ok(out)
    }

    /// A new POSIX file descriptor of the memory (`cuMemExportToShareableHandle`).
    pub fn export_fd(&self) -> Result<OwnedFd> {
        self.ctx.bind_to_thread().cu("cuCtxSetCurrent")?;
        let mut fd: i32 = -1;
        // SAFETY: for POSIX fds the shareable handle is an int the call writes.
        unsafe {
            sys::cuMemExportToShareableHandle(
                (&mut fd as *mut i32).cast(),
                self.handle,
                sys::CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
                0,
            )
        }
        .result()
        .cu("cuMemExportToShareableHandle")?;
        // SAFETY: a new descriptor the call opened for us.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The descriptor a Vulkan importer needs for a buffer of `len()` bytes on this memory: the
    /// CUDA device's UUID (which is the Vulkan device's), [`Descriptor::NO_DRIVER_UUID`] (CUDA
    /// has no driver UUID), any memory type (the importer picks a `DEVICE_LOCAL` one), not
    /// dedicated, at offset 0.
    pub fn descriptor(&self, usage: vk::BufferUsageFlags) -> Descriptor {
        Descriptor {
            resource: ResourceDesc::Buffer(BufferDesc { size: self.len as u64, usage }),
            handle_type: HandleType::OpaqueFd,
            allocation_size: self.size as u64,
            memory_type_index: 0,
            memory_type_bits: u32::MAX,
            dedicated: false,
            offset: 0,
            layout: vk::ImageLayout::UNDEFINED,
            device_uuid: self.device_uuid,
            driver_uuid: Descriptor::NO_DRIVER_UUID,
            row_pitch: 0,
        }
    }
}

impl Drop for ExportableMemory {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: the range and handle made in `new`; work using them was waited for by its
        // owner before dropping (the frame protocol returns the memory first).
        unsafe {
            if self.ptr != 0 {
                let _ = sys::cuMemUnmap(self.ptr, self.size);
                let _ = sys::cuMemAddressFree(self.ptr, self.size);
            }
            let _ = sys::cuMemRelease(self.handle);
        }
    }
}

// SAFETY: driver handles; the CUDA driver API is thread-safe and every method binds the context.
unsafe impl Send for ExportableMemory {}
// SAFETY: as above; `&self` methods only read the handles.
unsafe impl Sync for ExportableMemory {}
