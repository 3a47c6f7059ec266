//! What `Context::new` needs besides the device it creates: the physical device it picks, and
//! the clean-up of a context that failed half way.

use crate::error::{Error, Result, VkResultExt};
use crate::validation::ValidationLog;
use ash::vk;

/// Destroys a half-made context when `Context::new` fails part way.
pub(super) struct Partial {
    pub(super) instance: Option<ash::Instance>,
    pub(super) validation: Option<ValidationLog>,
    pub(super) device: Option<ash::Device>,
}

impl Partial {
    pub(super) fn disarm(mut self) -> Option<ValidationLog> {
        self.instance = None;
        self.device = None;
        self.validation.take()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // SAFETY: only objects made by the failed `Context::new`, in reverse order.
        unsafe {
            if let Some(d) = self.device.take() {
                d.destroy_device(None);
            }
            if let Some(v) = self.validation.as_mut() {
                v.uninstall();
            }
            if let Some(i) = self.instance.take() {
                i.destroy_instance(None);
            }
        }
    }
}

pub(super) fn pick_device(instance: &ash::Instance, wanted: Option<usize>) -> Result<vk::PhysicalDevice> {
    // SAFETY: a live instance.
    let devices = unsafe { instance.enumerate_physical_devices() }.vk("vkEnumeratePhysicalDevices")?;
    if devices.is_empty() {
        return Err(Error::NoDevice(
            "the loader found no Vulkan driver (Debian: apt-get install mesa-vulkan-drivers)".into(),
        ));
    }
    let wanted = match wanted {
        Some(i) => Some(i),
        None => device_from_env()?,
    };
    if let Some(i) = wanted {
        log::debug!("device {i} of {}, as asked (the options or EXTMEM_DEVICE)", devices.len());
        return devices.get(i).copied().ok_or_else(|| {
            Error::NoDevice(format!("device {i} asked for, but there are {} (see `extmem caps`)", devices.len()))
        });
    }
    // SAFETY: live physical devices.
    let is_gpu = |&pd: &vk::PhysicalDevice| {
        let t = unsafe { instance.get_physical_device_properties(pd) }.device_type;
        t == vk::PhysicalDeviceType::DISCRETE_GPU || t == vk::PhysicalDeviceType::INTEGRATED_GPU
    };
    let chosen = devices.iter().position(is_gpu);
    match chosen {
        Some(i) => log::debug!("device {i} of {}: the first GPU (EXTMEM_DEVICE=N picks another)", devices.len()),
        None => log::debug!("device 0 of {}: there is no GPU among them (a CPU driver?)", devices.len()),
    }
    Ok(devices[chosen.unwrap_or(0)])
}

/// `$EXTMEM_DEVICE` as a device index; a value that is not one is an error, not ignored.
fn device_from_env() -> Result<Option<usize>> {
    match std::env::var("EXTMEM_DEVICE") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| {
            Error::NoDevice(format!("EXTMEM_DEVICE={v:?} is not a device index (0, 1, ...: see `extmem caps`)"))
        }),
        _ => Ok(None),
    }
}
