//! The producer's side of a pool (docs/src/protocol.md §5): blocks exported once per consumer,
//! sub-allocations handed over as metadata, reused when everyone released them.

use crate::channel::{self, ChannelObj};
use crate::convert::{self, input, out_handle, out_value};
use crate::handles::{self, handle};
use crate::status::{extmem_status, guard, guard_value, CResult};
use crate::types::*;
use crate::vk_types::*;
use ash::vk;
use extmem_rs::pool::{Pool, PoolLink, PoolOptions, Pooled};
use extmem_rs::transport::Channel;
use extmem_rs::ResourceDesc;
use std::sync::{Arc, Mutex};

/// An exportable memory pool on a context (opaque-fd blocks). Thread-safe. Its
/// sub-allocations and links keep it alive.
pub struct extmem_pool {
    _private: [u8; 0],
}
handle!(extmem_pool => Pool);

/// A sub-allocation with its image or buffer bound: the producer's reference. Destroying it
/// destroys the resource and releases the producer's hold (the range is reused once every
/// consumer released it too).
pub struct extmem_pooled {
    _private: [u8; 0],
}
handle!(extmem_pooled => Pooled);

/// One consumer's connection to a pool: which blocks it was sent and what it holds. Keeps
/// its pool and channel alive; destroying it (or the consumer going away) releases everything
/// that consumer held. Calls on one link are serialised.
pub struct extmem_pool_link {
    _private: [u8; 0],
}
handle!(extmem_pool_link => LinkObj);

/// A [`PoolLink`] over a channel it keeps alive.
pub(crate) struct LinkObj {
    // Declared first, so dropped first: it borrows `*_channel`.
    link: Mutex<PoolLink<'static>>,
    _channel: Arc<ChannelObj>,
}

/// How a pool is made. All zero but `struct_size` is the default.
#[repr(C)]
pub struct extmem_pool_options {
    /// `sizeof(extmem_pool_options)`.
    pub struct_size: u32,
    /// Bytes per block; 0: 256 MiB.
    pub block_size: u64,
}

/// A pool on `ctx`. `options`: NULL for the defaults.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_create(
    ctx: *mut crate::context::extmem_context,
    options: *const extmem_pool_options,
    out: *mut *mut extmem_pool,
) -> extmem_status {
    guard("extmem_pool_create", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let ctx = crate::context::get(ctx)?;
        let mut o = PoolOptions::default();
        if !options.is_null() {
            // SAFETY: the caller's struct.
            let c = unsafe { input(options, "options") }?;
            if c.block_size != 0 {
                o = o.block_size(c.block_size);
            }
        }
        *out = handles::insert::<extmem_pool>(Pool::new(&ctx, o)?);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// An image (left `UNDEFINED`) or buffer in the pool.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_allocate(
    pool: *mut extmem_pool,
    resource: *const extmem_resource_desc,
    out: *mut *mut extmem_pooled,
) -> extmem_status {
    guard("extmem_pool_allocate", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let p = handles::get(pool)?;
        // SAFETY: the caller's struct (no struct_size: it is a plain description).
        let r = unsafe { convert::plain(resource, "resource") }?;
        let pooled = match convert::to_resource(r, "resource")? {
            ResourceDesc::Image(i) => p.image(i)?,
            ResourceDesc::Buffer(b) => p.buffer(b)?,
            _ => return Err(crate::status::Failure::arg("resource: an unknown kind")),
        };
        *out = handles::insert::<extmem_pooled>(pooled);
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Where the sub-allocation lies and what it holds: what a consumer is sent.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_get_desc(
    pooled: *const extmem_pooled,
    out: *mut extmem_pooled_desc,
) -> extmem_status {
    guard("extmem_pooled_get_desc", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_value(out, "out") }?;
        *out = convert::from_pooled(&handles::get(pooled)?.desc());
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// The image (`VK_NULL_HANDLE` for a buffer), owned by the `extmem_pooled`.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_vk_image(pooled: *const extmem_pooled) -> VkImage {
    guard_value("extmem_pooled_vk_image", vk::Image::null(), || Ok(handles::get(pooled)?.image().unwrap_or_default()))
}

/// The buffer (`VK_NULL_HANDLE` for an image), owned by the `extmem_pooled`.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_vk_buffer(pooled: *const extmem_pooled) -> VkBuffer {
    guard_value("extmem_pooled_vk_buffer", vk::Buffer::null(), || {
        Ok(handles::get(pooled)?.buffer().unwrap_or_default())
    })
}

/// The block's memory (owned by the pool); the resource is at the handle's offset in it.
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_vk_memory(pooled: *const extmem_pooled) -> VkDeviceMemory {
    guard_value("extmem_pooled_vk_memory", vk::DeviceMemory::null(), || Ok(handles::get(pooled)?.memory()))
}

/// Destroys the producer's reference (make sure the GPU is done with it first).
#[no_mangle]
pub unsafe extern "C" fn extmem_pooled_destroy(pooled: *mut extmem_pooled) {
    guard("extmem_pooled_destroy", || {
        handles::remove(pooled)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// Drops the application's reference on the pool; its blocks are freed when its
/// sub-allocations and links are gone too.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_destroy(pool: *mut extmem_pool) {
    guard("extmem_pool_destroy", || {
        handles::remove(pool)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}

/// A new consumer of `pool`, reached over `ch`.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_link_create(
    pool: *mut extmem_pool,
    ch: *mut channel::extmem_channel,
    out: *mut *mut extmem_pool_link,
) -> extmem_status {
    guard("extmem_pool_link_create", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_handle(out, "out") }?;
        let p = handles::get(pool)?;
        let c = channel::get(ch)?;
        // SAFETY: the channel lives in `c`'s allocation, which `LinkObj` keeps (and so never
        // moves or frees) until after the link that borrows it is dropped (field order).
        let borrowed: &'static Channel = unsafe { &*(&c.channel as *const Channel) };
        let link = PoolLink::new(&p, borrowed);
        *out = handles::insert::<extmem_pool_link>(LinkObj { link: Mutex::new(link), _channel: c });
        Ok(extmem_status::EXTMEM_OK)
    })
}

fn with_link<R>(link: *mut extmem_pool_link, f: impl FnOnce(&mut PoolLink<'static>) -> CResult<R>) -> CResult<R> {
    let l = handles::get(link)?;
    let mut guard = l.link.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// Hands `pooled` to the link's consumer (its block first, with its fd, if the consumer does
/// not have it yet) and waits for the consumer to hold it: `EXTMEM_ERROR_PEER` with the
/// consumer's reason when it refuses.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_link_share(
    link: *mut extmem_pool_link,
    pooled: *const extmem_pooled,
) -> extmem_status {
    guard("extmem_pool_link_share", || {
        let p = handles::get(pooled)?;
        with_link(link, |l| {
            l.share(&p)?;
            l.wait_held(&p.handle())?;
            Ok(extmem_status::EXTMEM_OK)
        })
    })
}

/// Waits until the consumer released `pooled`, applying other releases on the way.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_link_wait_released(
    link: *mut extmem_pool_link,
    pooled: *const extmem_pooled,
) -> extmem_status {
    guard("extmem_pool_link_wait_released", || {
        let p = handles::get(pooled)?;
        with_link(link, |l| {
            l.wait_released(&p.handle())?;
            Ok(extmem_status::EXTMEM_OK)
        })
    })
}

/// Applies every release that has arrived, without waiting; `*out_count`: how many.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_link_poll(link: *mut extmem_pool_link, out_count: *mut u32) -> extmem_status {
    guard("extmem_pool_link_poll", || {
        // SAFETY: the caller's pointer.
        let out = unsafe { out_value(out_count, "out_count") }?;
        *out = with_link(link, |l| Ok(l.poll()?))?.min(u32::MAX as usize) as u32;
        Ok(extmem_status::EXTMEM_OK)
    })
}

/// Ends the link: everything its consumer held is released.
#[no_mangle]
pub unsafe extern "C" fn extmem_pool_link_destroy(link: *mut extmem_pool_link) {
    guard("extmem_pool_link_destroy", || {
        handles::remove(link)?;
        Ok(extmem_status::EXTMEM_OK)
    });
}
