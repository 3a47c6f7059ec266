//! Semaphores shared with the other side through an opaque fd (timeline preferred), for
//! frame hand-offs ordered on the GPU.

use crate::convert::{self, out_handle, out_value};
use crate::handles::{self, handle};
use crate::status::{extmem_status, guard, guard_value, CResult, Failure};
use crate::vk_types::*;
use ash::vk;
use extmem_rs::sync::{SemaphoreKind, SharedSemaphore};
use std::ffi::c_int;
use std::os::fd::IntoRawFd;
use std::sync::Arc;

/// A semaphore shared with another instance or process. Owns its `VkSemaphore`; keeps its
/// context alive. Thread-safe.
pub struct extmem_semaphore {
    _private: [u8; 0],
}
handle!(extmem_semaphore => SharedSemaphore);

/// What a shared semaphore is.
pub type extmem_semaphore_kind = u32;
/// A timeline semaphore: values only grow (the frame protocol's 2n+1 / 2n+2).
pub const EXTMEM_SEMAPHORE_TIMELINE: extmem_semaphore_kind = 0;
/// A binary semaphore (where timelines cannot be shared): one wait per signal.
pub const EXTMEM_SEMAPHORE_BINARY: extmem_semaphore_kind = 1;

fn kind(k: extmem_semaphore_kind) -> CResult<SemaphoreKind> {
    match k {
        EXTMEM_SEMAPHORE_TIMELINE => Ok(SemaphoreKind::Timeline),
        EXTMEM_SEMAPHORE_BINARY => Ok(SemaphoreKind::Binary),
        k => Err(Failure::arg(format!("kind is {k}: use EXTMEM_SEMAPHORE_TIMELINE or EXTMEM_SEMAPHORE_BINARY"))),
    }
}

/// An exportable semaphore of `kind`. `EXTMEM_ERROR_UNSUPPORTED`, naming what is missing,
/// where the device cannot share it (Mesa's lavapipe cannot: use host ordering there).
#[no_mangle]
pub unsafe extern "C" fn extmem_semaphore_create(
    ctx: *mut crate::context::extmem_context,
    kind: extmem_semaphore_kind,
    out: *mut *mut extmem_semaphore,
) -> extmem_status {
    guard("extmem_semaphore_create", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let ctx = crate::context::get(ctx)?;
        *out = handles::insert::<extmem_semaphore>(SharedSemaphore::new(&ctx, self::kind(kind)?)?);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// A new opaque fd for the semaphore (close-on-exec), owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn extmem_semaphore_export(
    semaphore: *const extmem_semaphore,
    out_fd: *mut c_int,
) -> extmem_status {
    guard("extmem_semaphore_export", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_value(out_fd, "out_fd") }?;
        *out = -1;
        *out = handles::get(semaphore)?.export()?.into_raw_fd();
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Imports a semaphore of `kind` that another instance exported. `fd` is taken in every case:
/// Vulkan owns it on success, extmem closes it on failure.
#[no_mangle]
pub unsafe extern "C" fn extmem_semaphore_import(
    ctx: *mut crate::context::extmem_context,
    fd: c_int,
    kind: extmem_semaphore_kind,
    out: *mut *mut extmem_semaphore,
) -> extmem_status {
    let mut fd = Some(fd);
    let status = guard("extmem_semaphore_import", || {
        let owned = convert::owned_fd(fd.take().unwrap_or(-1), "fd")?;
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let ctx = crate::context::get(ctx)?;
        *out = handles::insert::<extmem_semaphore>(SharedSemaphore::import_as(&ctx, owned, self::kind(kind)?)?);
        Ok(extmem_status::EXTMEM_OK)
    });
    if let Some(fd) = fd {
        convert::close_given(fd);
    }
    status
}

/// The `VkSemaphore` (owned by the `extmem_semaphore`), or `VK_NULL_HANDLE` for a bad handle.
#[no_mangle]
pub unsafe extern "C" fn extmem_semaphore_vk_semaphore(semaphore: *const extmem_semaphore) -> VkSemaphore {
    guard_value("extmem_semaphore_vk_semaphore", vk::Semaphore::null(), || Ok(handles::get(semaphore)?.handle()))
}

/// Drops the application's reference (destroyed when nothing else holds it).
#[no_mangle]
pub unsafe extern "C" fn extmem_semaphore_destroy(semaphore: *mut extmem_semaphore) {
    guard("extmem_semaphore_destroy", || {
        handles::remove(semaphore)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// Resolves a semaphore handle; NULL is `None`.
pub(crate) fn get_optional(s: *const extmem_semaphore) -> CResult<Option<Arc<SharedSemaphore>>> {
    if s.is_null() {
        return Ok(None);
    }
    handles::get(s).map(Some)
}
