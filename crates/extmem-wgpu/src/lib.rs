//! extmem for wgpu programs, through wgpu's Vulkan backend (wgpu-hal).
//!
//! - [`context`]: an extmem [`Context`] that borrows a `wgpu::Device`'s Vulkan instance,
//!   device and queue (it never submits to wgpu's queue itself: everything goes through
//!   `wgpu::Queue::submit`, which holds wgpu's own queue lock).
//! - [`SharedTexture`]: a received descriptor imported as a `wgpu::Texture`
//!   ([`SharedTexture::import`]), or a texture made exportable for wgpu to render into
//!   ([`SharedTexture::new_exportable`]); [`SharedBuffer`] the same for buffers.
//! - The queue-family hand-off with the other side: [`SharedTexture::acquire`] before wgpu
//!   uses the texture, [`SharedTexture::release_commands`] after, each a command buffer of its
//!   own recorded through `as_hal_mut` and submitted on wgpu's queue.
//!
//! - [`validation`]: the validation layer's messages about wgpu's calls, collected so a test
//!   fails on any, but the few wgpu's own calls produce.
//!
//! Synchronisation: wgpu creates its device without `VK_KHR_external_semaphore_fd`, so a
//! wgpu device cannot share a semaphore with the other side. The hand-off is then ordered on
//! the host, as on drivers without external semaphores (lavapipe): wait for wgpu's submission
//! (`Device::poll` with `PollType::Wait` naming the submission), then tell the other side on the
//! socket; on receipt, [`SharedTexture::acquire`] and use it.
//!
//! Known limit: wgpu-core starts a texture made from a hal texture in its `UNINITIALIZED`
//! state, so its first barrier transitions from `VK_IMAGE_LAYOUT_UNDEFINED`, which the
//! specification allows to discard contents. lavapipe keeps them; `scripts/gpu-check.sh`
//! checks every byte of a received image on an NVIDIA GPU. Where a driver does not, have the
//! other side write after wgpu's first use of the texture.

mod error;
pub mod format;
mod texture;
pub mod validation;

pub use error::{Error, Result};
pub use extmem;
pub use texture::{SharedBuffer, SharedTexture};
pub use wgpu;

use extmem::{vk, AppDevice, Context, QueueAccess};
use std::sync::Arc;
use wgpu::hal::api::Vulkan;

/// An extmem context on `device`'s Vulkan objects (which wgpu keeps alive while `device`
/// lives: keep `device` alive while the context and its resources live).
///
/// The context records only ([`QueueAccess::RecordOnly`]): extmem's own submissions
/// ([`extmem::SharedMemory::read`] and friends) fail on it with an error saying so, and the
/// helpers of this crate submit through wgpu's queue.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use extmem_wgpu::wgpu;
/// let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
///     backends: wgpu::Backends::VULKAN,
///     ..wgpu::InstanceDescriptor::new_without_display_handle()
/// });
/// let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
/// let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
/// let ctx = extmem_wgpu::context(&device)?;
/// let texture = extmem_wgpu::SharedTexture::new_exportable(
///     &device, &ctx, (1920, 1080), wgpu::TextureFormat::Rgba8Unorm, wgpu::TextureUsages::RENDER_ATTACHMENT)?;
/// let (descriptor, fd) = texture.export()?; // to another process or API
/// assert_eq!(descriptor.device_uuid, ctx.device_uuid());
/// # drop((queue, fd));
/// # Ok(())
/// # }
/// ```
pub fn context(device: &wgpu::Device) -> Result<Arc<Context>> {
    // SAFETY: the hal device is only read, for handles that stay valid while `device` lives.
    let hal = unsafe { device.as_hal::<Vulkan>() }.ok_or(Error::NotVulkan)?;
    let shared = hal.shared_instance();
    let instance = shared.raw_instance();
    let physical_device = hal.raw_physical_device();
    // wgpu-hal enables timeline semaphores wherever the device has them.
    let mut features12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut features = vk::PhysicalDeviceFeatures2::default().push_next(&mut features12);
    // SAFETY: a live physical device of wgpu's instance.
    unsafe { instance.get_physical_device_features2(physical_device, &mut features) };
    let timeline = features12.timeline_semaphore == vk::TRUE;
    let app = AppDevice::new(
        shared.entry(),
        instance,
        physical_device,
        hal.raw_device(),
        hal.queue_family_index(),
        hal.raw_queue(),
    )
    .extensions(hal.enabled_device_extensions().iter().copied())
    .timeline_semaphores(timeline)
    .queue_access(QueueAccess::RecordOnly);
    // SAFETY: wgpu-hal's own handles and the lists it enabled them with; wgpu keeps them alive
    // while `device` (which the caller keeps alive) lives.
    Ok(unsafe { Context::from_app(app) }?)
}
