//! The texture formats and usages wgpu and Vulkan both name, mapped one to the other.

use extmem::vk;

/// The Vulkan format of a wgpu texture format, for the formats shared images come in.
pub fn to_vk(format: wgpu::TextureFormat) -> Option<vk::Format> {
    use wgpu::TextureFormat as T;
    FORMATS.iter().find(|(w, _)| *w == format).map(|(_, v)| *v).or(match format {
        T::Depth32Float => Some(vk::Format::D32_SFLOAT),
        _ => None,
    })
}

/// The wgpu texture format of a Vulkan format.
pub fn from_vk(format: vk::Format) -> Option<wgpu::TextureFormat> {
    FORMATS.iter().find(|(_, v)| *v == format).map(|(w, _)| *w)
}

const FORMATS: [(wgpu::TextureFormat, vk::Format); 14] = [
    (wgpu::TextureFormat::R8Unorm, vk::Format::R8_UNORM),
    (wgpu::TextureFormat::R8Uint, vk::Format::R8_UINT),
    (wgpu::TextureFormat::R16Float, vk::Format::R16_SFLOAT),
    (wgpu::TextureFormat::R32Float, vk::Format::R32_SFLOAT),
    (wgpu::TextureFormat::R32Uint, vk::Format::R32_UINT),
    (wgpu::TextureFormat::Rg8Unorm, vk::Format::R8G8_UNORM),
    (wgpu::TextureFormat::Rgba8Unorm, vk::Format::R8G8B8A8_UNORM),
    (wgpu::TextureFormat::Rgba8UnormSrgb, vk::Format::R8G8B8A8_SRGB),
    (wgpu::TextureFormat::Rgba8Uint, vk::Format::R8G8B8A8_UINT),
    (wgpu::TextureFormat::Bgra8Unorm, vk::Format::B8G8R8A8_UNORM),
    (wgpu::TextureFormat::Bgra8UnormSrgb, vk::Format::B8G8R8A8_SRGB),
    (wgpu::TextureFormat::Rgba16Float, vk::Format::R16G16B16A16_SFLOAT),
    (wgpu::TextureFormat::Rgba32Float, vk::Format::R32G32B32A32_SFLOAT),
    (wgpu::TextureFormat::Rgb10a2Unorm, vk::Format::A2B10G10R10_UNORM_PACK32),
];

/// The Vulkan image usage a wgpu texture usage needs.
pub fn image_usage(usage: wgpu::TextureUsages) -> vk::ImageUsageFlags {
    use wgpu::TextureUsages as U;
    let mut vk_usage = vk::ImageUsageFlags::empty();
    for (w, v) in [
        (U::COPY_SRC, vk::ImageUsageFlags::TRANSFER_SRC),
        (U::COPY_DST, vk::ImageUsageFlags::TRANSFER_DST),
        (U::TEXTURE_BINDING, vk::ImageUsageFlags::SAMPLED),
        (U::STORAGE_BINDING, vk::ImageUsageFlags::STORAGE),
        (U::RENDER_ATTACHMENT, vk::ImageUsageFlags::COLOR_ATTACHMENT),
    ] {
        if usage.contains(w) {
            vk_usage |= v;
        }
    }
    vk_usage
}

/// The wgpu-hal uses of a texture with `usage` (what wgpu-hal's own image creation derives).
pub fn hal_uses(usage: wgpu::TextureUsages) -> wgpu::TextureUses {
    use wgpu::{TextureUsages as U, TextureUses as H};
    let mut uses = H::empty();
    for (w, h) in [
        (U::COPY_SRC, H::COPY_SRC),
        (U::COPY_DST, H::COPY_DST),
        (U::TEXTURE_BINDING, H::RESOURCE),
        (U::STORAGE_BINDING, H::STORAGE_READ_WRITE),
        (U::RENDER_ATTACHMENT, H::COLOR_TARGET),
    ] {
        if usage.contains(w) {
            uses |= h;
        }
    }
    uses
}

/// The Vulkan buffer usage a wgpu buffer usage needs.
pub fn buffer_usage(usage: wgpu::BufferUsages) -> vk::BufferUsageFlags {
    use wgpu::BufferUsages as U;
    let mut vk_usage = vk::BufferUsageFlags::empty();
    for (w, v) in [
        (U::COPY_SRC, vk::BufferUsageFlags::TRANSFER_SRC),
        (U::COPY_DST, vk::BufferUsageFlags::TRANSFER_DST),
        (U::STORAGE, vk::BufferUsageFlags::STORAGE_BUFFER),
        (U::UNIFORM, vk::BufferUsageFlags::UNIFORM_BUFFER),
        (U::VERTEX, vk::BufferUsageFlags::VERTEX_BUFFER),
        (U::INDEX, vk::BufferUsageFlags::INDEX_BUFFER),
        (U::INDIRECT, vk::BufferUsageFlags::INDIRECT_BUFFER),
    ] {
        if usage.contains(w) {
            vk_usage |= v;
        }
    }
    vk_usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_map_both_ways() {
        for (w, v) in FORMATS {
            assert_eq!(to_vk(w), Some(v));
            assert_eq!(from_vk(v), Some(w));
        }
        assert_eq!(from_vk(vk::Format::R64_UINT), None);
    }

    #[test]
    fn usages_need_the_vulkan_usages_wgpu_uses() {
        let u = wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_SRC;
        assert_eq!(image_usage(u), vk::ImageUsageFlags::STORAGE | vk::ImageUsageFlags::TRANSFER_SRC);
        assert_eq!(hal_uses(u), wgpu::TextureUses::STORAGE_READ_WRITE | wgpu::TextureUses::COPY_SRC);
        let b = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        assert_eq!(buffer_usage(b), vk::BufferUsageFlags::STORAGE_BUFFER | vk::BufferUsageFlags::TRANSFER_DST);
    }
}
