//! Importing memory another instance or process exported: the checks done before the driver
//! is asked, then the import and the binding.

use super::create::{bind, create_resource, dedicated_info, requirements};
use super::{features, what, Cleanup, ImportSteps, SharedMemory};
use crate::caps;
use crate::context::Context;
use crate::desc::{Descriptor, ResourceDesc};
use crate::error::{Error, IoResultExt, Result};
use crate::handle::HandleType;
use crate::host::HostMapping;
use crate::sync::Holder;
use ash::vk;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

impl SharedMemory {
    /// Imports memory another instance or process exported, and binds a new image or buffer
    /// made from the descriptor to it.
    ///
    /// What can be checked before the driver is asked is checked here, with an error saying
    /// what is wrong: the handle type's extension and import support, device and driver UUIDs
    /// for opaque descriptors, the memory type, and that the allocation holds the resource.
    ///
    /// `fd` is taken in every case: on success Vulkan owns it (it is closed when the memory is
    /// freed); on failure this function closes it, unless the driver already did (see
    /// [`crate::fdkind::owner_after_failed_import`]). It is never closed twice. (Host-allocation
    /// memory: `fd` is the memfd, which the returned memory keeps mapped and closes on drop.)
    pub fn import(ctx: &Arc<Context>, desc: &Descriptor, fd: OwnedFd) -> Result<SharedMemory> {
        Self::import_with_steps(ctx, desc, fd, &mut ImportSteps::default())
            .inspect_err(|e| log::warn!("import of {:?} refused or failed: {e}", desc.handle_type))
    }

    /// [`SharedMemory::import`], timing its steps into `steps` (benchmarks).
    pub fn import_with_steps(
        ctx: &Arc<Context>,
        desc: &Descriptor,
        fd: OwnedFd,
        steps: &mut ImportSteps,
    ) -> Result<SharedMemory> {
        let mut clock = steps.clock();
        let h = desc.handle_type;
        if !ctx.supports_handle_type(h) {
            return Err(Error::Import(format!(
                "{} has no {:?}: it cannot import {h} memory",
                ctx.device_name(),
                h.extension()
            )));
        }
        // Before any driver sees them: the descriptor's own shape and Vulkan rules (the more
        // telling reason where both are wrong), then what the fd is.
        if h == HandleType::HostAllocation
            && (!matches!(desc.resource, ResourceDesc::Buffer(_)) || desc.offset != 0 || desc.dedicated)
        {
            return Err(Error::Import(
                "host-allocation memory comes as a buffer at offset 0 of a plain allocation".into(),
            ));
        }
        crate::limits::check_import(ctx, desc)?;
        crate::fdkind::check(ctx, h, std::os::fd::AsFd::as_fd(&fd))?;
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
        steps.checks_ns = clock.lap();
        let mut cleanup = Cleanup { device: d, resource: None, memory: None };
        let resource = create_resource(ctx, &desc.resource, h, false)?;
        cleanup.resource = Some(resource);
        let (requirements, _, _) = requirements(d, resource);
        steps.create_resource_ns = clock.lap();
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
        // VUID-VkMemoryDedicatedAllocateInfo-{buffer-01435,image-01433} and the dedicated
        // binding's offset 0 (VUID-vkBind*Memory-memory-01508/01509).
        if desc.dedicated && (desc.offset != 0 || desc.allocation_size != requirements.size) {
            return Err(Error::Import(format!(
                "a dedicated allocation holds exactly its {}: allocation_size must be {} and offset 0, the descriptor \
                 says allocation_size {} at offset {}",
                what(&desc.resource),
                requirements.size,
                desc.allocation_size,
                desc.offset
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
        // The driver gets a duplicate: whether it closes it on failure differs by driver.
        let given = rustix::io::fcntl_dupfd_cloexec(&fd, 0)
            .io(|| "duplicate the descriptor for the driver".into())?
            .into_raw_fd();
        let mut import = vk::ImportMemoryFdInfoKHR::default().handle_type(h.to_vk()).fd(given);
        let mut dedicated_info = dedicated_info(resource);
        let mut info = vk::MemoryAllocateInfo::default()
            .allocation_size(desc.allocation_size)
            .memory_type_index(memory_type_index)
            .push_next(&mut import);
        if desc.dedicated {
            info = info.push_next(&mut dedicated_info);
        }
        // SAFETY: a valid allocate info; the descriptor stays open for the call.
        let memory = match unsafe { d.allocate_memory(&info, None) } {
            Ok(memory) => memory,
            Err(result) => {
                // Closed exactly once: by us, or already by a driver that takes it even on failure.
                crate::fdkind::release_after_failed_import(ctx, fd, given);
                return Err(Error::Vulkan { call: "vkAllocateMemory (import)", result });
            }
        };
        // The import succeeded: Vulkan owns the duplicate; the original is ours to close.
        drop(fd);
        steps.allocate_ns = clock.lap();
        cleanup.memory = Some(memory);
        bind(d, resource, memory, desc.offset)?;
        steps.bind_ns = clock.lap();
        std::mem::forget(cleanup);
        Ok(SharedMemory {
            ctx: ctx.clone(),
            resource,
            memory,
            allocation_size: desc.allocation_size,
            memory_type_index,
            memory_type_bits: requirements.memory_type_bits,
            dedicated: desc.dedicated,
            offset: desc.offset,
            handle_type: h,
            holder: Mutex::new(Holder::External),
            staging: Mutex::new(None),
            host: None,
        })
    }

    /// Host memory another process shared (its memfd), mapped here and imported by pointer.
    /// Any device that imports host pointers can: no device or driver UUID has to match.
    /// The descriptor's shape (a buffer at offset 0 of a plain allocation) is checked by `import`.
    fn import_host(ctx: &Arc<Context>, desc: &Descriptor, fd: OwnedFd) -> Result<SharedMemory> {
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
