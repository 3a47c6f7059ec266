//! Exportable and imported images and buffers that own their Vulkan objects.

use crate::caps;
use crate::context::{Context, PathKind};
use crate::error::{Error, IoResultExt, Result, VkResultExt};
use crate::handle::HandleType;
use crate::host::{self, HostMapping};
use crate::sync::{self, Holder};
use crate::transport::{BufferDesc, Descriptor, ImageDesc, ResourceDesc};
use ash::vk;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// Whether exported memory is a dedicated allocation for its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dedicated {
    /// Always (the default): CUDA maps dedicated allocations far faster, and an importer gets
    /// exactly the resource's memory (see `shared/spec/NOTES.md`).
    #[default]
    Always,
    /// Only when the driver prefers or requires it.
    IfPreferred,
    /// Only when the driver requires it.
    Never,
}

/// Extra commands recorded after a transfer's release barrier.
type Then<'a> = Option<&'a dyn Fn(&ash::Device, vk::CommandBuffer)>;

#[derive(Clone, Copy, Debug)]
enum Resource {
    Image(vk::Image, ImageDesc),
    Buffer(vk::Buffer, BufferDesc),
}

/// Memory that can cross an instance or process boundary, with the image or buffer bound to
/// it. Dropping it destroys both (after the device is idle for them).
pub struct SharedMemory {
    ctx: Arc<Context>,
    resource: Resource,
    memory: vk::DeviceMemory,
    allocation_size: u64,
    memory_type_index: u32,
    memory_type_bits: u32,
    dedicated: bool,
    handle_type: HandleType,
    holder: Mutex<Holder>,
    /// The staging buffer of the last `read` / `write`, reused while it is big enough
    /// (allocating one costs about a millisecond on NVIDIA's driver).
    staging: Mutex<Option<Staging>>,
    /// For host-allocation memory, the mapped memfd behind it (dropped after the memory is
    /// freed: fields drop after `Drop::drop`).
    host: Option<HostMapping>,
}

/// Bytes per texel of the formats `read` and `write` know.
fn texel_size(format: vk::Format) -> Option<u64> {
    use vk::Format as F;
    Some(match format {
        F::R8_UNORM | F::R8_UINT | F::R8_SRGB => 1,
        F::R8G8_UNORM | F::R16_SFLOAT | F::R16_UNORM | F::R16_UINT => 2,
        F::R8G8B8A8_UNORM
        | F::R8G8B8A8_SRGB
        | F::R8G8B8A8_UINT
        | F::B8G8R8A8_UNORM
        | F::B8G8R8A8_SRGB
        | F::R32_SFLOAT
        | F::R32_UINT
        | F::A2B10G10R10_UNORM_PACK32
        | F::R16G16_SFLOAT => 4,
        F::R16G16B16A16_SFLOAT | F::R16G16B16A16_UNORM | F::R32G32_SFLOAT => 8,
        F::R32G32B32A32_SFLOAT | F::R32G32B32A32_UINT => 16,
        _ => return None,
    })
}

/// Destroys a half-made resource when creation fails part way.
struct Cleanup<'a> {
    device: &'a ash::Device,
    resource: Option<Resource>,
    memory: Option<vk::DeviceMemory>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // SAFETY: objects made by the failed creation, never used by the GPU.
        unsafe {
            match self.resource.take() {
                Some(Resource::Image(i, _)) => self.device.destroy_image(i, None),
                Some(Resource::Buffer(b, _)) => self.device.destroy_buffer(b, None),
                None => {}
            }
            if let Some(m) = self.memory.take() {
                self.device.free_memory(m, None);
            }
        }
    }
}

impl SharedMemory {
    /// An exportable image. On the NV path with [`HandleType::OpaqueFd`] it is made exportable
    /// the VK_NV_external_memory way (through the layer); otherwise with the core structures.
    pub fn new_image(
        ctx: &Arc<Context>,
        desc: ImageDesc,
        handle_type: HandleType,
        dedicated: Dedicated,
    ) -> Result<SharedMemory> {
        Self::create(ctx, ResourceDesc::Image(desc), handle_type, dedicated)
    }

    /// An exportable buffer (core structures on both paths: VK_NV_external_memory defines
    /// images only; its memory export structure is used on the NV path).
    pub fn new_buffer(
        ctx: &Arc<Context>,
        desc: BufferDesc,
        handle_type: HandleType,
        dedicated: Dedicated,
    ) -> Result<SharedMemory> {
        Self::create(ctx, ResourceDesc::Buffer(desc), handle_type, dedicated)
    }

    fn create(
        ctx: &Arc<Context>,
        desc: ResourceDesc,
        handle_type: HandleType,
        dedicated: Dedicated,
    ) -> Result<SharedMemory> {
        if !ctx.supports_handle_type(handle_type) {
            return Err(Error::Unsupported(format!(
                "{} has no {:?}, so it cannot export {handle_type} memory",
                ctx.device_name(),
                handle_type.extension()
            )));
        }
        if handle_type == HandleType::HostAllocation {
            return Self::create_host(ctx, desc);
        }
        let features = features(ctx, &desc, handle_type).filter(|f| f.exportable).ok_or_else(|| {
            Error::Unsupported(format!(
                "{} cannot export {} as {handle_type} (see `extmem caps`)",
                ctx.device_name(),
                what(&desc)
            ))
        })?;
        let nv = ctx.path() == PathKind::Nv && handle_type == HandleType::OpaqueFd;
        let d = ctx.device();
        let mut cleanup = Cleanup { device: d, resource: None, memory: None };
        let resource = create_resource(ctx, &desc, handle_type, nv)?;
        cleanup.resource = Some(resource);
        let (requirements, prefers, requires) = requirements(d, resource);
        let dedicated = match dedicated {
            Dedicated::Always => true,
            Dedicated::IfPreferred => prefers || requires || features.dedicated_only,
            Dedicated::Never => requires || features.dedicated_only,
        };
        let memory_type_index = ctx
            .memory_type(
                requirements.memory_type_bits,
                vk::MemoryPropertyFlags::empty(),
                vk::MemoryPropertyFlags::DEVICE_LOCAL,
            )
            .ok_or_else(|| Error::Unsupported("no memory type fits the resource".into()))?;

        let mut dedicated_info = dedicated_info(resource);
        let mut nv_export =
            vk::ExportMemoryAllocateInfoNV::default().handle_types(vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32);
        let mut khr_export = vk::ExportMemoryAllocateInfo::default().handle_types(handle_type.to_vk());
        let mut info =
            vk::MemoryAllocateInfo::default().allocation_size(requirements.size).memory_type_index(memory_type_index);
        info = if ctx.path() == PathKind::Nv && handle_type == HandleType::OpaqueFd {
            info.push_next(&mut nv_export)
        } else {
            info.push_next(&mut khr_export)
        };
        if dedicated {
            info = info.push_next(&mut dedicated_info);
        }
        // SAFETY: a valid allocate info on a live device.
        let memory = unsafe { d.allocate_memory(&info, None) }.vk("vkAllocateMemory (exportable)")?;
        cleanup.memory = Some(memory);
        bind(d, resource, memory, 0)?;
        std::mem::forget(cleanup);
        Ok(SharedMemory {
            ctx: ctx.clone(),
            resource,
            memory,
            allocation_size: requirements.size,
            memory_type_index,
            memory_type_bits: requirements.memory_type_bits,
            dedicated,
            handle_type,
            holder: Mutex::new(Holder::Fresh),
            staging: Mutex::new(None),
            host: None,
        })
    }

    /// A buffer in host memory: a new memfd, mapped and imported by pointer. Exporting it
    /// sends a duplicate of the memfd.
    fn create_host(ctx: &Arc<Context>, desc: ResourceDesc) -> Result<SharedMemory> {
        let h = HandleType::HostAllocation;
        if matches!(desc, ResourceDesc::Image(_)) {
            return Err(Error::Unsupported(
                "host-allocation memory backs buffers only (share images as opaque fds)".into(),
            ));
        }
        if !features(ctx, &desc, h).is_some_and(|f| f.importable) {
            return Err(Error::Unsupported(format!(
                "{} cannot import {} from host memory (see `extmem caps`)",
                ctx.device_name(),
                what(&desc)
            )));
        }
        Self::on_host_mapping(ctx, &desc, Holder::Fresh, |required| {
            let size = host::round_up(required, host::alignment(ctx));
            Ok((HostMapping::create(size as usize)?, size))
        })
    }

    /// Host memory another process shared (its memfd), mapped here and imported by pointer.
    /// Any device that imports host pointers can: no device or driver UUID has to match.
    fn import_host(ctx: &Arc<Context>, desc: &Descriptor, fd: OwnedFd) -> Result<SharedMemory> {
        if !matches!(desc.resource, ResourceDesc::Buffer(_)) || desc.offset != 0 || desc.dedicated {
            return Err(Error::Import(
                "host-allocation memory comes as a buffer at offset 0 of a plain allocation".into(),
            ));
        }
        let size = usize::try_from(desc.allocation_size)
            .map_err(|_| Error::Import(format!("{} bytes do not fit this address space", desc.allocation_size)))?;
        Self::on_host_mapping(ctx, &desc.resource, Holder::External, |required| {
            if required > desc.allocation_size {
                return Err(Error::Import(format!(
                    "{} needs {required} bytes, the shared host memory has {}",
                    what(&desc.resource),
                    desc.allocation_size
                )));
            }
            Ok((HostMapping::open(fd, size)?, desc.allocation_size))
        })
    }

    /// The resource `desc` bound to host memory: `map` gets the bytes the resource needs and
    /// returns the mapping and the size to import from it.
    fn on_host_mapping(
        ctx: &Arc<Context>,
        desc: &ResourceDesc,
        holder: Holder,
        map: impl FnOnce(u64) -> Result<(HostMapping, u64)>,
    ) -> Result<SharedMemory> {
        let h = HandleType::HostAllocation;
        let d = ctx.device();
        let mut cleanup = Cleanup { device: d, resource: None, memory: None };
        let resource = create_resource(ctx, desc, h, false)?;
        cleanup.resource = Some(resource);
        let (requirements, _, _) = requirements(d, resource);
        let (mapping, size) = map(requirements.size)?;
        let (memory, memory_type_index) = host::import(ctx, &mapping, size, requirements.memory_type_bits)?;
        cleanup.memory = Some(memory);
        bind(d, resource, memory, 0)?;
        std::mem::forget(cleanup);
        Ok(SharedMemory {
            ctx: ctx.clone(),
            resource,
            memory,
            allocation_size: size,
            memory_type_index,
            memory_type_bits: requirements.memory_type_bits,
            dedicated: false,
            handle_type: h,
            holder: Mutex::new(holder),
            staging: Mutex::new(None),
            host: Some(mapping),
        })
    }

    /// For host-allocation memory, the host mapping of its pages (what CUDA registers with
    /// `cuMemHostRegister`, or the CPU reads once the GPU's writes are waited for).
    pub fn host_mapping(&self) -> Option<&HostMapping> {
        self.host.as_ref()
    }

    /// The descriptor an importer needs.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            resource: self.desc(),
            handle_type: self.handle_type,
            allocation_size: self.allocation_size,
            memory_type_index: self.memory_type_index,
            memory_type_bits: self.memory_type_bits,
            dedicated: self.dedicated,
            offset: 0,
            layout: match self.resource {
                Resource::Image(..) => vk::ImageLayout::GENERAL,
                Resource::Buffer(..) => vk::ImageLayout::UNDEFINED,
            },
            device_uuid: self.ctx.device_uuid(),
            driver_uuid: self.ctx.driver_uuid(),
            row_pitch: self.row_pitch(),
        }
    }

    /// For a `LINEAR` image whose mip 0, layer 0 starts at the beginning of its memory, the
    /// bytes between rows; 0 otherwise.
    pub fn row_pitch(&self) -> u64 {
        let Resource::Image(image, desc) = self.resource else { return 0 };
        if desc.tiling != vk::ImageTiling::LINEAR {
            return 0;
        }
        let sub = vk::ImageSubresource::default().aspect_mask(vk::ImageAspectFlags::COLOR);
        // SAFETY: a live linear image.
        let layout = unsafe { self.ctx.device().get_image_subresource_layout(image, sub) };
        if layout.offset == 0 {
            layout.row_pitch
        } else {
            0
        }
    }

    /// Exports the memory: a new descriptor (close-on-exec) that the caller owns, and what
    /// the importer needs to know. Each call makes a new descriptor.
    pub fn export(&self) -> Result<(Descriptor, OwnedFd)> {
        if let Some(mapping) = &self.host {
            return Ok((self.descriptor(), mapping.dup_fd()?));
        }
        let info = vk::MemoryGetFdInfoKHR::default().memory(self.memory).handle_type(self.handle_type.to_vk());
        // SAFETY: the memory was allocated exportable as this handle type.
        let raw = unsafe { self.ctx.memory_fd().get_memory_fd(&info) }.vk("vkGetMemoryFdKHR")?;
        // SAFETY: a successful export hands the caller a new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).io(|| "setting FD_CLOEXEC".into())?;
        Ok((self.descriptor(), fd))
    }

    /// Imports memory another instance or process exported, and binds a new image or buffer
    /// made from the descriptor to it.
    ///
    /// What can be checked before the driver is asked is checked here, with an error saying
    /// what is wrong: the handle type's extension and import support, device and driver UUIDs
    /// for opaque descriptors, the memory type, and that the allocation holds the resource.
    ///
    /// `fd` is taken in every case: on success Vulkan owns it (it is closed when the memory is
    /// freed); on failure this function closes it. It is never closed twice. (Host-allocation
    /// memory: `fd` is the memfd, which the returned memory keeps mapped and closes on drop.)
    pub fn import(ctx: &Arc<Context>, desc: &Descriptor, fd: OwnedFd) -> Result<SharedMemory> {
        let h = desc.handle_type;
        if !ctx.supports_handle_type(h) {
            return Err(Error::Import(format!(
                "{} has no {:?}: it cannot import {h} memory",
                ctx.device_name(),
                h.extension()
            )));
        }
        if h == HandleType::HostAllocation {
            if !features(ctx, &desc.resource, h).is_some_and(|f| f.importable) {
                return Err(Error::Import(format!(
                    "{} cannot import {} from host memory",
                    ctx.device_name(),
                    what(&desc.resource)
                )));
            }
            return Self::import_host(ctx, desc, fd);
        }
        // Memory another API made (CUDA) has no driver UUID: the device UUID must match.
        let other_api = h == HandleType::OpaqueFd && desc.from_other_api();
        if h == HandleType::OpaqueFd
            && (desc.device_uuid != ctx.device_uuid() || (!other_api && desc.driver_uuid != ctx.driver_uuid()))
        {
            return Err(Error::Import(format!(
                "the memory comes from another device or driver (device UUID {} / driver UUID {}, this side {} / {}): \
                 an opaque fd imports only on the same device and driver; pick that device (EXTMEM_DEVICE, see `extmem caps`)",
                caps::hex(&desc.device_uuid),
                caps::hex(&desc.driver_uuid),
                caps::hex(&ctx.device_uuid()),
                caps::hex(&ctx.driver_uuid())
            )));
        }
        if !features(ctx, &desc.resource, h).is_some_and(|f| f.importable) {
            return Err(Error::Import(format!("{} cannot import {} as {h}", ctx.device_name(), what(&desc.resource))));
        }
        if desc.dedicated && desc.offset != 0 {
            return Err(Error::Import(format!("a dedicated allocation with the resource at offset {}", desc.offset)));
        }
        let d = ctx.device();
        let mut cleanup = Cleanup { device: d, resource: None, memory: None };
        let resource = create_resource(ctx, &desc.resource, h, false)?;
        cleanup.resource = Some(resource);
        let (requirements, _, _) = requirements(d, resource);
        let needed = desc.offset.saturating_add(requirements.size);
        if needed > desc.allocation_size {
            return Err(Error::Import(format!(
                "{} needs {} bytes at offset {}, the shared allocation has {} bytes",
                what(&desc.resource),
                requirements.size,
                desc.offset,
                desc.allocation_size
            )));
        }
        let count = ctx.memory_properties().memory_type_count;
        let type_bits = match h {
            HandleType::OpaqueFd if other_api => desc.memory_type_bits,
            HandleType::OpaqueFd => 1u32.checked_shl(desc.memory_type_index).unwrap_or(0),
            _ => fd_memory_type_bits(ctx, h, &fd)?,
        } & requirements.memory_type_bits;
        let memory_type_index = if other_api {
            // No exporter's type to repeat: device-local memory among the allowed types.
            ctx.memory_type(type_bits, vk::MemoryPropertyFlags::DEVICE_LOCAL, vk::MemoryPropertyFlags::empty())
                .ok_or_else(|| {
                    Error::Import(format!(
                        "memory from another API needs a DEVICE_LOCAL memory type; none among {type_bits:#b} (the resource takes {:#b})",
                        requirements.memory_type_bits
                    ))
                })?
        } else if h == HandleType::OpaqueFd {
            desc.memory_type_index
        } else {
            type_bits.trailing_zeros()
        };
        if memory_type_index >= count || type_bits & (1 << memory_type_index) == 0 {
            return Err(Error::Import(format!(
                "memory type {} does not fit: this device has {count} memory type(s), the resource takes {:#b}",
                desc.memory_type_index, requirements.memory_type_bits
            )));
        }
        let mut import = vk::ImportMemoryFdInfoKHR::default().handle_type(h.to_vk()).fd(fd.as_raw_fd());
        let mut dedicated_info = dedicated_info(resource);
        let mut info = vk::MemoryAllocateInfo::default()
            .allocation_size(desc.allocation_size)
            .memory_type_index(memory_type_index)
            .push_next(&mut import);
        if desc.dedicated {
            info = info.push_next(&mut dedicated_info);
        }
        // SAFETY: a valid allocate info; the descriptor stays open for the call.
        let memory = unsafe { d.allocate_memory(&info, None) }.vk("vkAllocateMemory (import)")?;
        // The import succeeded: Vulkan owns the descriptor now. (On failure `fd` was dropped,
        // and so closed, by the `?` above.)
        let _ = fd.into_raw_fd();
        cleanup.memory = Some(memory);
        bind(d, resource, memory, desc.offset)?;
        std::mem::forget(cleanup);
        Ok(SharedMemory {
            ctx: ctx.clone(),
            resource,
            memory,
            allocation_size: desc.allocation_size,
            memory_type_index,
            memory_type_bits: requirements.memory_type_bits,
            dedicated: desc.dedicated,
            handle_type: h,
            holder: Mutex::new(Holder::External),
            staging: Mutex::new(None),
            host: None,
        })
    }

    /// The context the memory belongs to.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }
    /// The memory.
    pub fn memory(&self) -> vk::DeviceMemory {
        self.memory
    }
    /// The image, when the memory holds one.
    pub fn image(&self) -> Option<vk::Image> {
        match self.resource {
            Resource::Image(i, _) => Some(i),
            Resource::Buffer(..) => None,
        }
    }
    /// The buffer, when the memory holds one.
    pub fn buffer(&self) -> Option<vk::Buffer> {
        match self.resource {
            Resource::Buffer(b, _) => Some(b),
            Resource::Image(..) => None,
        }
    }
    /// What the memory holds.
    pub fn desc(&self) -> ResourceDesc {
        match self.resource {
            Resource::Image(_, d) => ResourceDesc::Image(d),
            Resource::Buffer(_, d) => ResourceDesc::Buffer(d),
        }
    }
    /// The allocation's size.
    pub fn allocation_size(&self) -> u64 {
        self.allocation_size
    }
    /// Whether it is a dedicated allocation.
    pub fn is_dedicated(&self) -> bool {
        self.dedicated
    }
    /// The handle type it is shared as.
    pub fn handle_type(&self) -> HandleType {
        self.handle_type
    }

    /// The bytes [`SharedMemory::read`] returns and [`SharedMemory::write`] takes: the buffer,
    /// or mip level 0 of every layer of the image, tightly packed.
    pub fn data_len(&self) -> Result<u64> {
        match self.resource {
            Resource::Buffer(_, d) => Ok(d.size),
            Resource::Image(_, d) => {
                let texel = texel_size(d.format)
                    .ok_or_else(|| Error::Unsupported(format!("reading or writing {:?} images", d.format)))?;
                Ok(texel
                    * d.extent.width as u64
                    * d.extent.height as u64
                    * d.extent.depth as u64
                    * d.array_layers as u64)
            }
        }
    }

    /// Writes `bytes` through the GPU's copy engine, then releases the memory to the external
    /// queue family (images in `GENERAL`) and waits for completion: afterwards the other side
    /// may acquire it.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        self.write_synced(bytes, None, None)
    }

    /// [`SharedMemory::write`], with the GPU waiting for `wait` (semaphore, timeline value)
    /// before the copy and signalling `signal` after it.
    pub fn write_synced(
        &self,
        bytes: &[u8],
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
    ) -> Result<()> {
        self.write_then(bytes, wait, signal, None)
    }

    /// Uploads `bytes` through the staging buffer, recording `then` after the release.
    fn write_then(
        &self,
        bytes: &[u8],
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        then: Then<'_>,
    ) -> Result<()> {
        let len = self.data_len()?;
        if bytes.len() as u64 != len {
            return Err(Error::Unsupported(format!("write of {} bytes into {len} bytes", bytes.len())));
        }
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        staging.bytes()[..bytes.len()].copy_from_slice(bytes);
        self.transfer_then(staging, true, len, wait, signal, then)
    }

    /// [`SharedMemory::write`], then, in the same submission and only after the frame's bytes
    /// are made available and released to the external queue family, writes `value` into the
    /// 4 bytes at `offset` of the buffer `counter`. Another API that waits for the counter on its
    /// GPU (CUDA's `cuStreamWaitValue32`, see `extmem-cuda`) then sees the whole frame.
    pub fn write_with_counter(&self, bytes: &[u8], counter: &SharedMemory, offset: u64, value: u32) -> Result<()> {
        let counter_buffer = counter.counter_slot(offset)?;
        let mut counter_holder = counter.holder.lock().unwrap_or_else(|e| e.into_inner());
        let bump = counter_bump(counter_buffer, *counter_holder, self.ctx.queue_family(), offset, value);
        self.write_then(bytes, None, None, Some(&bump))?;
        *counter_holder = Holder::External;
        Ok(())
    }

    /// The buffer holding a 4-byte counter at `offset`.
    fn counter_slot(&self, offset: u64) -> Result<vk::Buffer> {
        let Resource::Buffer(buffer, desc) = self.resource else {
            return Err(Error::Unsupported("the counter must live in a buffer".into()));
        };
        if offset % 4 != 0 || offset + 4 > desc.size {
            return Err(Error::Unsupported(format!("counter at offset {offset} of a {}-byte buffer", desc.size)));
        }
        Ok(buffer)
    }

    /// Fills a buffer with the 32-bit `value` on the GPU (`vkCmdFillBuffer`: a frame produced
    /// without any host copy), ordered by the optional semaphore wait / signal, and then, when
    /// `counter` is given, writes its counter as [`SharedMemory::write_with_counter`] does.
    pub fn fill_synced(
        &self,
        value: u32,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        counter: Option<(&SharedMemory, u64, u32)>,
    ) -> Result<()> {
        self.fill_async(value, wait, signal, counter)?.wait()
    }

    /// [`SharedMemory::fill_synced`] without waiting: the GPU work is in flight until the
    /// returned [`crate::Submission`] is waited for or dropped.
    pub fn fill_async(
        &self,
        value: u32,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        counter: Option<(&SharedMemory, u64, u32)>,
    ) -> Result<crate::Submission<'_>> {
        let Resource::Buffer(buffer, _) = self.resource else {
            return Err(Error::Unsupported("fill_synced on an image".into()));
        };
        if counter.is_some_and(|(c, ..)| std::ptr::eq(c, self)) {
            return Err(Error::Unsupported("the counter must live in another buffer than the frame".into()));
        }
        let family = self.ctx.queue_family();
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        let slot =
            counter.map(|(c, offset, value)| c.counter_slot(offset).map(|b| (c, b, offset, value))).transpose()?;
        let mut counter_holder = slot.map(|(c, ..)| c.holder.lock().unwrap_or_else(|e| e.into_inner()));
        let bump = slot
            .zip(counter_holder.as_deref())
            .map(|((_, b, offset, value), h)| counter_bump(b, *h, family, offset, value));
        let from = *holder;
        let submission = self.ctx.submit_async(
            |d, cb| {
                let transfer = vk::PipelineStageFlags::TRANSFER;
                // SAFETY: recording into a command buffer in the recording state.
                unsafe {
                    let acquire = sync::acquire_buffer(buffer, from, family, vk::AccessFlags::TRANSFER_WRITE);
                    d.cmd_pipeline_barrier(
                        cb,
                        vk::PipelineStageFlags::TOP_OF_PIPE,
                        transfer,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[acquire],
                        &[],
                    );
                    d.cmd_fill_buffer(cb, buffer, 0, vk::WHOLE_SIZE, value);
                    let release = sync::release_buffer(buffer, family, vk::AccessFlags::TRANSFER_WRITE);
                    d.cmd_pipeline_barrier(
                        cb,
                        transfer,
                        vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[release],
                        &[],
                    );
                }
                if let Some(bump) = &bump {
                    bump(d, cb);
                }
            },
            wait.map(|(s, v)| (s.handle(), v)),
            signal.map(|(s, v)| (s.handle(), v)),
        )?;
        // Ownership moves in command order: the next submission acquires from the external
        // queue family whether or not this one has finished.
        *holder = Holder::External;
        if let Some(h) = counter_holder.as_deref_mut() {
            *h = Holder::External;
        }
        Ok(submission)
    }

    /// The cached staging buffer, replaced by a bigger one when it holds less than `len`.
    fn staging(&self, len: u64) -> Result<std::sync::MutexGuard<'_, Option<Staging>>> {
        let mut cache = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|s| (s.len as u64) < len) {
            *cache = None;
            *cache = Some(Staging::new(&self.ctx, len)?);
        }
        Ok(cache)
    }

    /// Reads the contents through the GPU's copy engine, acquiring the memory from the
    /// external queue family first and releasing it back afterwards.
    pub fn read(&self) -> Result<Vec<u8>> {
        self.read_synced(None, None)
    }

    /// [`SharedMemory::read`], with the GPU waiting for `wait` before the copy and signalling
    /// `signal` after it.
    pub fn read_synced(
        &self,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
    ) -> Result<Vec<u8>> {
        let len = self.data_len()?;
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        self.transfer(staging, false, len, wait, signal)?;
        Ok(staging.bytes()[..len as usize].to_vec())
    }

    /// Reads the first `n` bytes of a buffer (a cheap probe of what the other side wrote),
    /// with the same acquire / release as [`SharedMemory::read`].
    pub fn read_prefix(&self, n: u64) -> Result<Vec<u8>> {
        let Resource::Buffer(_, desc) = self.resource else {
            return Err(Error::Unsupported("read_prefix on an image (use read)".into()));
        };
        let len = n.min(desc.size).max(1);
        let cache = self.staging(len)?;
        let staging = cache.as_ref().expect("staging() fills it");
        self.transfer(staging, false, len, None, None)?;
        Ok(staging.bytes()[..len as usize].to_vec())
    }

    /// Copies between the staging buffer and the resource (`len` bytes of a buffer, all of
    /// an image), acquiring from and releasing to the external queue family around it.
    fn transfer(
        &self,
        staging: &Staging,
        write: bool,
        len: u64,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
    ) -> Result<()> {
        self.transfer_then(staging, write, len, wait, signal, None)
    }

    /// [`SharedMemory::transfer`], recording `then` after the release barrier.
    fn transfer_then(
        &self,
        staging: &Staging,
        write: bool,
        len: u64,
        wait: Option<(&sync::SharedSemaphore, u64)>,
        signal: Option<(&sync::SharedSemaphore, u64)>,
        then: Then<'_>,
    ) -> Result<()> {
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        let family = self.ctx.queue_family();
        let (access, layout) = if write {
            (vk::AccessFlags::TRANSFER_WRITE, vk::ImageLayout::TRANSFER_DST_OPTIMAL)
        } else {
            (vk::AccessFlags::TRANSFER_READ, vk::ImageLayout::GENERAL)
        };
        let top = vk::PipelineStageFlags::TOP_OF_PIPE;
        let transfer = vk::PipelineStageFlags::TRANSFER;
        let bottom = vk::PipelineStageFlags::BOTTOM_OF_PIPE;
        let none = vk::DependencyFlags::empty();
        let from = *holder;
        let wait = wait.map(|(s, v)| (s.handle(), v));
        let signal = signal.map(|(s, v)| (s.handle(), v));
        self.ctx.submit_with(
            |d, cb| {
                // SAFETY: commands recorded into a command buffer in the recording state.
                unsafe {
                    match self.resource {
                        Resource::Image(image, desc) => {
                            let range = sync::color_range(desc.array_layers, 1);
                            let acquire = sync::acquire_image(image, range, from, family, layout, access);
                            d.cmd_pipeline_barrier(cb, top, transfer, none, &[], &[], &[acquire]);
                            let region = vk::BufferImageCopy::default()
                                .image_subresource(
                                    vk::ImageSubresourceLayers::default()
                                        .aspect_mask(vk::ImageAspectFlags::COLOR)
                                        .layer_count(desc.array_layers),
                                )
                                .image_extent(desc.extent);
                            if write {
                                d.cmd_copy_buffer_to_image(cb, staging.buffer, image, layout, &[region]);
                            } else {
                                d.cmd_copy_image_to_buffer(cb, image, layout, staging.buffer, &[region]);
                            }
                            let release = sync::release_image(
                                image,
                                range,
                                family,
                                layout,
                                if write { access } else { vk::AccessFlags::empty() },
                            );
                            d.cmd_pipeline_barrier(cb, transfer, bottom, none, &[], &[], &[release]);
                        }
                        Resource::Buffer(buffer, _) => {
                            let acquire = sync::acquire_buffer(buffer, from, family, access);
                            d.cmd_pipeline_barrier(cb, top, transfer, none, &[], &[acquire], &[]);
                            let region = vk::BufferCopy::default().size(len);
                            if write {
                                d.cmd_copy_buffer(cb, staging.buffer, buffer, &[region]);
                            } else {
                                d.cmd_copy_buffer(cb, buffer, staging.buffer, &[region]);
                            }
                            let release = sync::release_buffer(
                                buffer,
                                family,
                                if write { access } else { vk::AccessFlags::empty() },
                            );
                            d.cmd_pipeline_barrier(cb, transfer, bottom, none, &[], &[release], &[]);
                        }
                    }
                    if !write {
                        let host = vk::BufferMemoryBarrier::default()
                            .buffer(staging.buffer)
                            .size(vk::WHOLE_SIZE)
                            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .dst_access_mask(vk::AccessFlags::HOST_READ)
                            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED);
                        d.cmd_pipeline_barrier(cb, transfer, vk::PipelineStageFlags::HOST, none, &[], &[host], &[]);
                    }
                }
                if let Some(then) = then {
                    then(d, cb);
                }
            },
            wait,
            signal,
        )?;
        *holder = Holder::External;
        Ok(())
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        let d = self.ctx.device();
        // SAFETY: `submit` waits for its work, so the GPU no longer uses these objects.
        unsafe {
            match self.resource {
                Resource::Image(i, _) => d.destroy_image(i, None),
                Resource::Buffer(b, _) => d.destroy_buffer(b, None),
            }
            d.free_memory(self.memory, None);
        }
    }
}

/// Records the counter write of [`SharedMemory::write_with_counter`]: acquire the counter's
/// buffer, wait for every earlier transfer write to be available, write `value`, release.
fn counter_bump(
    buffer: vk::Buffer,
    from: Holder,
    family: u32,
    offset: u64,
    value: u32,
) -> impl Fn(&ash::Device, vk::CommandBuffer) {
    move |d, cb| {
        let transfer = vk::PipelineStageFlags::TRANSFER;
        // SAFETY: recording into a command buffer in the recording state, after the frame's
        // own release barrier.
        unsafe {
            // ALL_COMMANDS chains with the frame's release barrier (whose second scope is
            // BOTTOM_OF_PIPE), so the counter is written only after the frame's bytes were made
            // available.
            let acquire = sync::acquire_buffer(buffer, from, family, vk::AccessFlags::TRANSFER_WRITE);
            let frame_written = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::ALL_COMMANDS,
                transfer,
                vk::DependencyFlags::empty(),
                &[frame_written],
                &[acquire],
                &[],
            );
            d.cmd_fill_buffer(cb, buffer, offset, 4, value);
            let release = sync::release_buffer(buffer, family, vk::AccessFlags::TRANSFER_WRITE);
            d.cmd_pipeline_barrier(
                cb,
                transfer,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                vk::DependencyFlags::empty(),
                &[],
                &[release],
                &[],
            );
        }
    }
}

fn what(desc: &ResourceDesc) -> String {
    match desc {
        ResourceDesc::Image(i) => format!(
            "{:?} {:?} images ({}x{}, usage {:?})",
            i.format, i.tiling, i.extent.width, i.extent.height, i.usage
        ),
        ResourceDesc::Buffer(b) => format!("buffers of usage {:?}", b.usage),
    }
}

fn features(ctx: &Context, desc: &ResourceDesc, h: HandleType) -> Option<caps::Features> {
    match desc {
        ResourceDesc::Image(i) => caps::image_features(ctx.instance(), ctx.physical_device(), i, h),
        ResourceDesc::Buffer(b) => caps::buffer_features(ctx.instance(), ctx.physical_device(), b, h),
    }
}

/// Creates the image or buffer, external for `h` (the NV way when `nv` and it is an image).
fn create_resource(ctx: &Context, desc: &ResourceDesc, h: HandleType, nv: bool) -> Result<Resource> {
    let d = ctx.device();
    match *desc {
        ResourceDesc::Image(i) => {
            let mut khr = vk::ExternalMemoryImageCreateInfo::default().handle_types(h.to_vk());
            let mut nv_info = vk::ExternalMemoryImageCreateInfoNV::default()
                .handle_types(vk::ExternalMemoryHandleTypeFlagsNV::OPAQUE_WIN32);
            let mut info = vk::ImageCreateInfo::default()
                .image_type(if i.extent.depth > 1 { vk::ImageType::TYPE_3D } else { vk::ImageType::TYPE_2D })
                .format(i.format)
                .extent(i.extent)
                .mip_levels(i.mip_levels)
                .array_layers(i.array_layers)
                .samples(vk::SampleCountFlags::TYPE_1)
                .tiling(i.tiling)
                .usage(i.usage)
                .initial_layout(vk::ImageLayout::UNDEFINED);
            info = if nv { info.push_next(&mut nv_info) } else { info.push_next(&mut khr) };
            // SAFETY: a valid create info.
            Ok(Resource::Image(unsafe { d.create_image(&info, None) }.vk("vkCreateImage")?, i))
        }
        ResourceDesc::Buffer(b) => {
            let mut khr = vk::ExternalMemoryBufferCreateInfo::default().handle_types(h.to_vk());
            let info = vk::BufferCreateInfo::default().size(b.size).usage(b.usage).push_next(&mut khr);
            // SAFETY: a valid create info.
            Ok(Resource::Buffer(unsafe { d.create_buffer(&info, None) }.vk("vkCreateBuffer")?, b))
        }
    }
}

/// Memory requirements, and whether the driver prefers / requires a dedicated allocation.
fn requirements(d: &ash::Device, r: Resource) -> (vk::MemoryRequirements, bool, bool) {
    let mut dedicated = vk::MemoryDedicatedRequirements::default();
    let mut req = vk::MemoryRequirements2::default().push_next(&mut dedicated);
    // SAFETY: a live resource.
    unsafe {
        match r {
            Resource::Image(i, _) => {
                d.get_image_memory_requirements2(&vk::ImageMemoryRequirementsInfo2::default().image(i), &mut req)
            }
            Resource::Buffer(b, _) => {
                d.get_buffer_memory_requirements2(&vk::BufferMemoryRequirementsInfo2::default().buffer(b), &mut req)
            }
        }
    }
    let r = req.memory_requirements;
    (r, dedicated.prefers_dedicated_allocation == vk::TRUE, dedicated.requires_dedicated_allocation == vk::TRUE)
}

fn dedicated_info(r: Resource) -> vk::MemoryDedicatedAllocateInfo<'static> {
    match r {
        Resource::Image(i, _) => vk::MemoryDedicatedAllocateInfo::default().image(i),
        Resource::Buffer(b, _) => vk::MemoryDedicatedAllocateInfo::default().buffer(b),
    }
}

fn bind(d: &ash::Device, r: Resource, memory: vk::DeviceMemory, offset: u64) -> Result<()> {
    // SAFETY: a live resource and memory that holds it at `offset`.
    unsafe {
        match r {
            Resource::Image(i, _) => d.bind_image_memory(i, memory, offset).vk("vkBindImageMemory"),
            Resource::Buffer(b, _) => d.bind_buffer_memory(b, memory, offset).vk("vkBindBufferMemory"),
        }
    }
}

/// The memory types a non-opaque descriptor (dma-buf) can be imported as.
fn fd_memory_type_bits(ctx: &Context, h: HandleType, fd: &OwnedFd) -> Result<u32> {
    let mut props = vk::MemoryFdPropertiesKHR::default();
    // SAFETY: a valid descriptor of a non-opaque handle type.
    unsafe {
        (ctx.memory_fd().fp().get_memory_fd_properties_khr)(
            ctx.device().handle(),
            h.to_vk(),
            fd.as_raw_fd(),
            &mut props,
        )
    }
    .result()
    .map_err(|result| {
        Error::Import(format!(
            "the driver does not take this {h} descriptor: vkGetMemoryFdPropertiesKHR returned {result}"
        ))
    })?;
    Ok(props.memory_type_bits)
}

/// A host-visible, mapped buffer for copies, kept by its [`SharedMemory`] for reuse.
struct Staging {
    ctx: Arc<Context>,
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    ptr: *mut u8,
    len: usize,
}

impl Staging {
    fn new(ctx: &Arc<Context>, len: u64) -> Result<Staging> {
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let d = ctx.device();
        // SAFETY: valid create infos on a live device; cleaned up on every error path.
        unsafe {
            let buffer = d
                .create_buffer(&vk::BufferCreateInfo::default().size(len).usage(usage), None)
                .vk("vkCreateBuffer (staging)")?;
            let req = d.get_buffer_memory_requirements(buffer);
            let host = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
            let Some(ty) = ctx.memory_type(req.memory_type_bits, host, vk::MemoryPropertyFlags::HOST_CACHED) else {
                d.destroy_buffer(buffer, None);
                return Err(Error::Unsupported("no host-visible coherent memory for staging".into()));
            };
            let memory = match d.allocate_memory(
                &vk::MemoryAllocateInfo::default().allocation_size(req.size).memory_type_index(ty),
                None,
            ) {
                Ok(m) => m,
                Err(e) => {
                    d.destroy_buffer(buffer, None);
                    return Err(Error::Vulkan { call: "vkAllocateMemory (staging)", result: e });
                }
            };
            // From here on, dropping `staging` cleans up.
            let mut staging =
                Staging { ctx: ctx.clone(), buffer, memory, ptr: std::ptr::null_mut(), len: len as usize };
            d.bind_buffer_memory(buffer, memory, 0).vk("vkBindBufferMemory (staging)")?;
            staging.ptr = d.map_memory(memory, 0, len, vk::MemoryMapFlags::empty()).vk("vkMapMemory")? as *mut u8;
            Ok(staging)
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn bytes(&self) -> &mut [u8] {
        // SAFETY: mapped for `len` bytes while the staging buffer lives; used by one thread
        // and never while the GPU writes it (`submit` waits).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let d = self.ctx.device();
        // SAFETY: the GPU is done with it (`submit` waits).
        unsafe {
            d.destroy_buffer(self.buffer, None);
            d.free_memory(self.memory, None);
        }
    }
}
