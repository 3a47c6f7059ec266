//! What a [`Context`](super::Context) is made from: the path, the queue kind and the options, each with a
//! default and setters so they can grow without breaking callers.

use ash::vk;

/// Which extension makes memory exportable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PathKind {
    /// Core 1.1 / VK_KHR_external_memory: what every current driver has.
    #[default]
    Khr,
    /// VK_NV_external_memory through the extmem layer (images made exportable with
    /// `VkExternalMemoryImageCreateInfoNV`, memory with `VkExportMemoryAllocateInfoNV`).
    Nv,
}

/// Which of the device's queue families a [`Context`](super::Context) submits to.
///
/// Every extmem operation is a transfer (fills, copies, ownership barriers), so any family
/// will do. The choice matters for latency when another API (CUDA) alternates with Vulkan on
/// the same GPU: see `bench/results/h100.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueueKind {
    /// The first family with graphics or compute (the "universal" queue).
    #[default]
    General,
    /// A compute family without graphics; the general one where the device has none.
    Compute,
    /// A transfer-only family (the copy engines); else a compute-only one; else the general one.
    Transfer,
}

impl std::str::FromStr for QueueKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "general" => Ok(QueueKind::General),
            "compute" => Ok(QueueKind::Compute),
            "transfer" => Ok(QueueKind::Transfer),
            other => Err(format!("unknown queue kind {other:?}: use general, compute or transfer")),
        }
    }
}

/// The family `kind` asks for among `families` (see [`QueueKind`] for the fallbacks).
pub(crate) fn pick_queue_family(families: &[vk::QueueFamilyProperties], kind: QueueKind) -> Option<u32> {
    let graphics_or_compute = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
    let find = |ok: &dyn Fn(vk::QueueFlags) -> bool| {
        families.iter().position(|f| f.queue_count > 0 && ok(f.queue_flags)).map(|i| i as u32)
    };
    let general = || find(&|f| f.intersects(graphics_or_compute));
    let compute_only = || find(&|f| f.contains(vk::QueueFlags::COMPUTE) && !f.contains(vk::QueueFlags::GRAPHICS));
    let transfer_only = || find(&|f| f.contains(vk::QueueFlags::TRANSFER) && !f.intersects(graphics_or_compute));
    match kind {
        QueueKind::General => general(),
        QueueKind::Compute => compute_only().or_else(general),
        QueueKind::Transfer => transfer_only().or_else(compute_only).or_else(general),
    }
}

/// How to set up a [`Context`](super::Context): start from `ContextOptions::default()` and chain the setters,
/// e.g. `ContextOptions::default().path(PathKind::Nv).validation(true)`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ContextOptions {
    /// NV path (through the layer) or KHR path.
    pub path: PathKind,
    /// Enable the Khronos validation layer (below the extmem layer) and collect its messages.
    pub validation: bool,
    /// Which physical device (index in enumeration order); default: `$EXTMEM_DEVICE`, else the
    /// first GPU, else the first device.
    pub device: Option<usize>,
    /// The application name given to the driver.
    pub app_name: String,
    /// Which queue family to submit to.
    pub queue: QueueKind,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            path: PathKind::Khr,
            validation: false,
            device: None,
            app_name: "extmem".into(),
            queue: QueueKind::General,
        }
    }
}

impl ContextOptions {
    /// NV path (through the layer) or KHR path (the default).
    pub fn path(mut self, path: PathKind) -> Self {
        self.path = path;
        self
    }
    /// Enables the Khronos validation layer and collects its messages.
    pub fn validation(mut self, validation: bool) -> Self {
        self.validation = validation;
        self
    }
    /// Picks the physical device by index in enumeration order (`None`: `$EXTMEM_DEVICE`, else
    /// the first GPU, else the first device).
    pub fn device(mut self, device: Option<usize>) -> Self {
        self.device = device;
        self
    }
    /// The application name given to the driver.
    pub fn app_name(mut self, app_name: impl Into<String>) -> Self {
        self.app_name = app_name.into();
        self
    }
    /// Which queue family to submit to.
    pub fn queue(mut self, queue: QueueKind) -> Self {
        self.queue = queue;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(flags: vk::QueueFlags) -> vk::QueueFamilyProperties {
        vk::QueueFamilyProperties { queue_flags: flags, queue_count: 1, ..Default::default() }
    }

    #[test]
    fn queue_kinds_pick_the_family_they_name() {
        use vk::QueueFlags as F;
        // NVIDIA's layout: universal, transfer-only, compute-only.
        let nvidia =
            [family(F::GRAPHICS | F::COMPUTE | F::TRANSFER), family(F::TRANSFER), family(F::COMPUTE | F::TRANSFER)];
        assert_eq!(pick_queue_family(&nvidia, QueueKind::General), Some(0));
        assert_eq!(pick_queue_family(&nvidia, QueueKind::Transfer), Some(1));
        assert_eq!(pick_queue_family(&nvidia, QueueKind::Compute), Some(2));
        // lavapipe's: one family for everything, so every kind falls back to it.
        let one = [family(F::GRAPHICS | F::COMPUTE | F::TRANSFER)];
        for kind in [QueueKind::General, QueueKind::Compute, QueueKind::Transfer] {
            assert_eq!(pick_queue_family(&one, kind), Some(0));
        }
        // No transfer-only family: a compute-only one comes next.
        let no_copy = [family(F::GRAPHICS | F::COMPUTE), family(F::COMPUTE)];
        assert_eq!(pick_queue_family(&no_copy, QueueKind::Transfer), Some(1));
        // A video family (neither graphics, compute nor transfer) is never taken; an empty
        // family neither.
        let video = [
            family(F::VIDEO_DECODE_KHR),
            vk::QueueFamilyProperties { queue_count: 0, ..family(F::TRANSFER) },
            family(F::COMPUTE),
        ];
        assert_eq!(pick_queue_family(&video, QueueKind::Transfer), Some(2));
        assert_eq!(pick_queue_family(&[family(F::VIDEO_DECODE_KHR)], QueueKind::General), None);
    }

    #[test]
    fn queue_kinds_parse_and_name_the_choices() {
        assert_eq!("transfer".parse::<QueueKind>(), Ok(QueueKind::Transfer));
        let err = "copy".parse::<QueueKind>().unwrap_err();
        assert!(err.contains("\"copy\"") && err.contains("general, compute or transfer"), "{err}");
    }
}
