//! Creating exportable images and buffers: device memory made exportable (the NV way on the
//! NV path), or host memory in a memfd imported by pointer; and the resource and binding
//! helpers creation and import share.

use super::{features, what, Cleanup, Dedicated, Resource, SharedMemory};
use crate::context::{Context, PathKind};
use crate::desc::{BufferDesc, ImageDesc, ResourceDesc};
use crate::error::{Error, Result, VkResultExt};
use crate::gate::Checked;
use crate::handle::HandleType;
use crate::host::{self, HostMapping};
use crate::sync::Holder;
use ash::vk;
use std::sync::{Arc, Mutex};

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
        let checked = crate::gate::check_create(ctx, &desc, handle_type)?;
        if handle_type == HandleType::HostAllocation {
            return Self::create_host(ctx, checked);
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
        let resource = create_resource(ctx, &checked, handle_type, nv)?;
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
            offset: 0,
            handle_type,
            holder: Mutex::new(Holder::Fresh),
            staging: Mutex::new(None),
            host: None,
        })
    }

    /// A buffer in host memory: a new memfd, mapped and imported by pointer. Exporting it
    /// sends a duplicate of the memfd.
    fn create_host(ctx: &Arc<Context>, checked: Checked<ResourceDesc>) -> Result<SharedMemory> {
        let desc = *checked.get();
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
        Self::on_host_mapping(ctx, &checked, Holder::Fresh, |required| {
            let size = host::round_up(required, host::alignment(ctx));
            Ok((HostMapping::create(size as usize)?, size))
        })
    }

    /// The resource `desc` bound to host memory: `map` gets the bytes the resource needs and
    /// returns the mapping and the size to import from it.
    pub(super) fn on_host_mapping(
        ctx: &Arc<Context>,
        desc: &Checked<ResourceDesc>,
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
            offset: 0,
            handle_type: h,
            holder: Mutex::new(holder),
            staging: Mutex::new(None),
            host: Some(mapping),
        })
    }
}

/// Creates the image or buffer, external for `h` (the NV way when `nv` and it is an image).
/// Only descriptions that passed the gate ([`crate::gate`]) reach the driver.
pub(crate) fn create_resource(
    ctx: &Context,
    desc: &Checked<ResourceDesc>,
    h: HandleType,
    nv: bool,
) -> Result<Resource> {
    let d = ctx.device();
    match *desc.get() {
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
pub(crate) fn requirements(d: &ash::Device, r: Resource) -> (vk::MemoryRequirements, bool, bool) {
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

pub(super) fn dedicated_info(r: Resource) -> vk::MemoryDedicatedAllocateInfo<'static> {
    match r {
        Resource::Image(i, _) => vk::MemoryDedicatedAllocateInfo::default().image(i),
        Resource::Buffer(b, _) => vk::MemoryDedicatedAllocateInfo::default().buffer(b),
    }
}

pub(crate) fn bind(d: &ash::Device, r: Resource, memory: vk::DeviceMemory, offset: u64) -> Result<()> {
    // SAFETY: a live resource and memory that holds it at `offset`.
    unsafe {
        match r {
            Resource::Image(i, _) => d.bind_image_memory(i, memory, offset).vk("vkBindImageMemory"),
            Resource::Buffer(b, _) => d.bind_buffer_memory(b, memory, offset).vk("vkBindBufferMemory"),
        }
    }
}
