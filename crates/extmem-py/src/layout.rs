//! The tensor a descriptor describes: shape, element type and strides.

use crate::dlpack::{KDL_FLOAT, KDL_UINT};

/// Shape, element type and strides of the tensor a descriptor describes.
pub struct Layout {
    /// Dimensions.
    pub shape: Vec<i64>,
    /// Strides in elements (`None`: compact row-major).
    pub strides: Option<Vec<i64>>,
    /// DLPack type code (`kDLUInt`, `kDLFloat`).
    pub code: u8,
    /// Bits per element.
    pub bits: u8,
}

impl Layout {
    /// A buffer is 1-D uint8; a LINEAR 2D image of a known format is height x width x channels
    /// with its row pitch; anything else has no tensor layout.
    pub fn of(desc: &extmem::Descriptor) -> Result<Layout, String> {
        use extmem::vk::{Format as F, ImageTiling};
        match desc.resource {
            extmem::ResourceDesc::Buffer(b) => {
                Ok(Layout { shape: vec![b.size as i64], strides: None, code: KDL_UINT, bits: 8 })
            }
            extmem::ResourceDesc::Image(i) => {
                let (code, bits, channels) = match i.format {
                    F::R8G8B8A8_UNORM | F::R8G8B8A8_UINT | F::R8G8B8A8_SRGB | F::B8G8R8A8_UNORM | F::B8G8R8A8_SRGB => {
                        (KDL_UINT, 8, 4)
                    }
                    F::R8_UNORM | F::R8_UINT => (KDL_UINT, 8, 1),
                    F::R32_SFLOAT => (KDL_FLOAT, 32, 1),
                    F::R16G16B16A16_SFLOAT => (KDL_FLOAT, 16, 4),
                    F::R32G32B32A32_SFLOAT => (KDL_FLOAT, 32, 4),
                    f => return Err(format!("{f:?} images have no tensor dtype here; share a buffer")),
                };
                let element = bits as u64 / 8;
                if i.tiling != ImageTiling::LINEAR || desc.row_pitch == 0 || !desc.row_pitch.is_multiple_of(element) {
                    return Err(format!(
                        "a {:?} {:?} image: its bytes are in the driver's tiling, not a tensor layout; share a buffer or a LINEAR image",
                        i.format, i.tiling
                    ));
                }
                if i.extent.depth != 1 || i.array_layers != 1 {
                    return Err("only single-layer 2D images map to a tensor".into());
                }
                let (h, w, c) = (i.extent.height as i64, i.extent.width as i64, channels);
                Ok(Layout {
                    shape: vec![h, w, c],
                    strides: Some(vec![(desc.row_pitch / element) as i64, c, 1]),
                    code,
                    bits,
                })
            }
            other => Err(format!("{other:?} has no tensor layout here; share a buffer or a LINEAR image")),
        }
    }

    /// The bytes from the first element to one past the last.
    pub fn span_bytes(&self) -> u64 {
        let element = self.bits as u64 / 8;
        match &self.strides {
            None => self.shape.iter().product::<i64>() as u64 * element,
            Some(st) => (self.shape.iter().zip(st).map(|(n, s)| (n - 1) * s).sum::<i64>() + 1) as u64 * element,
        }
    }
}
