//! Property tests of the descriptor's encoder and decoder.

use extmem::transport::{BufferDesc, Descriptor, ImageDesc, Message, ResourceDesc};
use extmem::{vk, HandleType};
use proptest::prelude::*;

fn handle_type() -> impl Strategy<Value = HandleType> {
    prop_oneof![Just(HandleType::OpaqueFd), Just(HandleType::DmaBuf), Just(HandleType::HostAllocation)]
}

fn resource() -> impl Strategy<Value = ResourceDesc> {
    let image = (1i32..=184, 1u32..=16384, 1u32..=16384, 1u32..=64, prop_oneof![Just(0i32), Just(1)], 1u32..0x1000)
        .prop_map(|(format, w, h, layers, tiling, usage)| {
            ResourceDesc::Image(ImageDesc {
                format: vk::Format::from_raw(format),
                extent: vk::Extent3D { width: w, height: h, depth: 1 },
                mip_levels: 1 + (w.max(h).ilog2() / 2),
                array_layers: layers,
                tiling: vk::ImageTiling::from_raw(tiling),
                usage: vk::ImageUsageFlags::from_raw(usage),
            })
        });
    let buffer = (1u64..=1 << 30, 1u32..0x1000).prop_map(|(size, usage)| {
        ResourceDesc::Buffer(BufferDesc { size, usage: vk::BufferUsageFlags::from_raw(usage) })
    });
    prop_oneof![image, buffer]
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (resource(), handle_type(), 0u32..32, any::<u32>(), any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>(), 0i32..=8)
        .prop_map(|(resource, handle_type, index, bits, dedicated, device_uuid, driver_uuid, layout)| {
            let size = match resource {
                ResourceDesc::Buffer(b) => b.size,
                _ => 1 << 20,
            };
            Descriptor {
                resource,
                handle_type,
                allocation_size: size + 4096,
                memory_type_index: index,
                memory_type_bits: bits | (1 << index),
                dedicated,
                offset: if dedicated { 0 } else { 4096 },
                layout: vk::ImageLayout::from_raw(layout),
                device_uuid,
                driver_uuid,
                row_pitch: 0,
            }
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        descriptor().prop_map(Message::Share),
        any::<u64>().prop_map(|frame| Message::FrameReady { frame }),
        any::<u64>().prop_map(|frame| Message::FrameDone { frame }),
        (any::<bool>(), "[ -~]{0,200}").prop_map(|(ok, detail)| Message::Verdict { ok, detail }),
        any::<u64>().prop_map(|len| Message::HostBytes { len }),
        Just(Message::Bye),
        Just(Message::ShareSemaphore),
        (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<u64>(), any::<[u8; 16]>()).prop_map(|(a, b, len, device_uuid)| {
            let mut handle = [0u8; 64];
            handle[..32].copy_from_slice(&a);
            handle[32..].copy_from_slice(&b);
            Message::CudaIpc { handle, len, device_uuid }
        }),
    ]
}

proptest! {
    #[test]
    fn every_valid_message_round_trips(m in message()) {
        prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn any_truncation_is_rejected(m in message(), cut in 1usize..64) {
        let bytes = m.encode();
        let keep = bytes.len().saturating_sub(cut);
        prop_assert!(Message::decode(&bytes[..keep]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn a_corrupted_byte_is_rejected_or_still_decodes_to_valid_values(m in message(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut bytes = m.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        if let Ok(decoded) = Message::decode(&bytes) {
            // Whatever decodes must pass the same checks again (re-encoding is stable).
            prop_assert_eq!(Message::decode(&decoded.encode()).unwrap(), decoded);
        }
    }
}
