//! The consumer's side of a pool: each block imported once and kept, each hand-off an image
//! or buffer bound at its offset, checked (docs/src/protocol.md §5) before anything is made.

use crate::channel;
use crate::convert::{self, out_handle, plain};
use crate::handles::{self, handle};
use crate::status::{extmem_status, guard, guard_value, CResult, Failure};
use crate::types::*;
use crate::vk_types::*;
use ash::vk;
use extmem_rs::pool::{protocol, PoolImporter, PooledImport};
use extmem_rs::transport::Message;
use std::ffi::c_int;
use std::sync::{Arc, Mutex, MutexGuard};

/// The blocks of one producer's pool imported into a context, and what is held in them.
/// Keeps its context alive; its imports keep it alive (and so the block memory they are
/// bound to). Calls on one importer are serialised.
pub struct extmem_pool_importer {
    _private: [u8; 0],
}
handle!(extmem_pool_importer => ImporterObj);

/// A resource bound into an imported block: this consumer's reference on a sub-allocation.
/// Owns its `VkImage` / `VkBuffer`; the block's memory is the importer's.
pub struct extmem_pooled_import {
    _private: [u8; 0],
}
handle!(extmem_pooled_import => ImportObj);

pub(crate) struct ImporterObj {
    importer: Mutex<PoolImporter>,
}

impl ImporterObj {
    fn lock(&self) -> MutexGuard<'_, PoolImporter> {
        self.importer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct ImportObj {
    // Dropped before `importer`, which holds the block memory it is bound to.
    import: Mutex<Option<PooledImport>>,
    importer: Arc<ImporterObj>,
}

/// An importer with no block yet.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_importer_create(
    ctx: *mut crate::context::extmem_context,
    out: *mut *mut extmem_pool_importer,
) -> extmem_status {
    guard("extmem_pool_importer_create", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let ctx = crate::context::get(ctx)?;
        let importer = ImporterObj { importer: Mutex::new(PoolImporter::new(&ctx)) };
        *out = handles::insert::<extmem_pool_importer>(importer);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Imports a block (`PoolBlock`), with the checks of an opaque-fd import; a block sent twice
/// is refused. `fd` is taken in every case.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_importer_add_block(
    importer: *mut extmem_pool_importer,
    block: *const extmem_block_desc,
    fd: c_int,
) -> extmem_status {
    let mut fd = Some(fd);
    let status = guard("extmem_pool_importer_add_block", || {
        let owned = convert::owned_fd(fd.take().unwrap_or(-1), "fd")?;
        let imp = handles::get(importer)?;
        // SAFETY: the caller's struct.
        let b = convert::to_block(unsafe { plain(block, "block") }?, "block")?;
        crate::import::block(&mut imp.lock(), &b, owned)?;
        Ok(extmem_status::EXTMEM_OK)
    });
    if let Some(fd) = fd {
        convert::close_given(fd);
    }
    status
}

fn bind(imp: &Arc<ImporterObj>, desc: &extmem_pooled_desc) -> CResult<*mut extmem_pooled_import> {
    let d = convert::to_pooled(desc, "pooled")?;
    let import = crate::import::pooled(&mut imp.lock(), &d)?;
    Ok(handles::insert::<extmem_pooled_import>(ImportObj { import: Mutex::new(Some(import)), importer: imp.clone() }))
}

/// Binds the resource of a hand-off (`PoolShare`) in a block imported before. Refused, with
/// nothing made, when the block was never sent, the range leaves the block or overlaps one
/// held, or the resource does not fit the range or the block's memory type.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_importer_bind(
    importer: *mut extmem_pool_importer,
    pooled: *const extmem_pooled_desc,
    out: *mut *mut extmem_pooled_import,
) -> extmem_status {
    guard("extmem_pool_importer_bind", || {
        // SAFETY: the caller's pointers.
        let (out, desc) = unsafe { (out_handle(out, "out")?, plain(pooled, "pooled")?) };
        *out = bind(&handles::get(importer)?, desc)?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Receives on `ch` until the next hand-off: blocks are imported on the way, the hand-off is
/// bound and answered with `PoolHeld`. A block or hand-off that fails its checks is answered
/// with a refusal (`Verdict` with the reason, which the producer sees) and its error returned.
/// `EXTMEM_END_OF_STREAM` when the producer said `Bye`.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_importer_recv(
    importer: *mut extmem_pool_importer,
    ch: *mut channel::extmem_channel,
    out: *mut *mut extmem_pooled_import,
) -> extmem_status {
    guard("extmem_pool_importer_recv", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let imp = handles::get(importer)?;
        let c = channel::get(ch)?;
        let refuse = |f: Failure| {
            let _ = protocol::refused(&c.channel, &extmem_rs::Error::Pool(f.message.clone()));
            f
        };
        loop {
            match c.channel.recv()? {
                (Message::PoolBlock(b), mut fds) => {
                    let fd = fds.pop().ok_or_else(|| Failure::arg("PoolBlock without its fd"))?;
                    crate::import::block(&mut imp.lock(), &b, fd).map_err(refuse)?;
                }
                (Message::PoolShare(p), _) => {
                    let handle = bind(&imp, &convert::from_pooled(&p)).map_err(refuse)?;
                    protocol::held(&c.channel, &p.handle)?;
                    *out = handle;
                    return Ok(extmem_status::EXTMEM_OK);
                }
                (Message::Bye, _) => return Ok(extmem_status::EXTMEM_END_OF_STREAM),
                (other, _) => {
                    return Err(refuse(Failure::new(
                        extmem_status::EXTMEM_ERROR_PROTOCOL,
                        format!("{} in the middle of the pool protocol", other.name()),
                    )))
                }
            }
        }
    })
}

/// Drops the application's reference on the importer; its blocks are freed when its
/// imports are released too.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_importer_destroy(importer: *mut extmem_pool_importer) {
    guard("extmem_pool_importer_destroy", || {
        handles::remove(importer)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

fn with_import<R>(import: *const extmem_pooled_import, f: impl FnOnce(&PooledImport) -> R) -> CResult<R> {
    let i = handles::get(import)?;
    let guard = i.import.lock().unwrap_or_else(|e| e.into_inner());
    let import = guard.as_ref().ok_or_else(|| Failure::new(extmem_status::EXTMEM_ERROR_MISUSE, "released already"))?;
    Ok(f(import))
}

/// What was handed over.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_import_get_desc(
    import: *const extmem_pooled_import,
    out: *mut extmem_pooled_desc,
) -> extmem_status {
    guard("extmem_pooled_import_get_desc", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { convert::out_value(out, "out") }?;
        *out = with_import(import, |i| convert::from_pooled(&i.desc()))?;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The image (`VK_NULL_HANDLE` for a buffer), owned by the import.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_import_vk_image(import: *const extmem_pooled_import) -> VkImage {
    guard_value("extmem_pooled_import_vk_image", vk::Image::null(), || {
        with_import(import, |i| i.image().unwrap_or_default())
    })
}

/// The buffer (`VK_NULL_HANDLE` for an image), owned by the import.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_import_vk_buffer(import: *const extmem_pooled_import) -> VkBuffer {
    guard_value("extmem_pooled_import_vk_buffer", vk::Buffer::null(), || {
        with_import(import, |i| i.buffer().unwrap_or_default())
    })
}

/// The imported block's memory (owned by the importer); the resource is at the handle's
/// offset in it.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_import_vk_memory(import: *const extmem_pooled_import) -> VkDeviceMemory {
    guard_value("extmem_pooled_import_vk_memory", vk::DeviceMemory::null(), || with_import(import, |i| i.memory()))
}

/// Releases the hand-off: destroys the resource (make sure the GPU is done with it), forgets
/// the hold and, with `ch` not NULL, tells the producer (`PoolRelease`). The handle is
/// destroyed in every case.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_import_release(
    import: *mut extmem_pooled_import,
    ch: *mut channel::extmem_channel,
) -> extmem_status {
    guard("extmem_pooled_import_release", || {
        let obj = handles::remove(import)?;
        let taken = obj.import.lock().unwrap_or_else(|e| e.into_inner()).take();
        let import = taken.ok_or_else(|| Failure::new(extmem_status::EXTMEM_ERROR_MISUSE, "released already"))?;
        let handle = obj.importer.lock().release(import)?;
        if !ch.is_null() {
            protocol::released(&channel::get(ch)?.channel, &handle)?;
        }
        Ok(extmem_status::EXTMEM_OK)
    })
}
