//! The pool messages on the wire: every message survives encoding, every byte string either
//! decodes to a message that encodes back to it or is refused with the field named.

use extmem::pool::{BlockDesc, PoolHandle, PooledDesc};
use extmem::transport::{BufferDesc, ImageDesc, Message, ResourceDesc};
use extmem::{vk, HandleType};
use proptest::prelude::*;

fn handle() -> impl Strategy<Value = PoolHandle> {
    (any::<u32>(), 0u64..1 << 39, 1u64..1 << 30, 1u64..u64::MAX)
        .prop_map(|(block, offset, size, generation)| PoolHandle { block, offset, size, generation })
}

fn pooled() -> impl Strategy<Value = PooledDesc> {
    (handle(), 1u32..4096, 1u32..4096, any::<bool>()).prop_map(|(handle, w, h, image)| {
        let resource = if image {
            ResourceDesc::Image(
                ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, w, h, vk::ImageUsageFlags::TRANSFER_DST)
                    .tiling(vk::ImageTiling::LINEAR),
            )
        } else {
            ResourceDesc::Buffer(BufferDesc::new(handle.size, vk::BufferUsageFlags::TRANSFER_SRC))
        };
        let fits = image && (w as u64 * 4).saturating_mul(h as u64) <= handle.size;
        let row_pitch = if fits { w as u64 * 4 } else { 0 };
        let layout = if image { vk::ImageLayout::GENERAL } else { vk::ImageLayout::UNDEFINED };
        PooledDesc { handle, resource, layout, row_pitch }
    })
}

proptest! {
    #[test]
    fn pool_messages_round_trip(p in pooled(), block in any::<u32>(), size in 1u64..1 << 40, uuid in any::<[u8; 16]>()) {
        let b = BlockDesc { block, size, handle_type: HandleType::OpaqueFd, memory_type_index: 3, device_uuid: uuid, driver_uuid: uuid };
        for m in [Message::PoolBlock(b), Message::PoolShare(p), Message::PoolHeld(p.handle), Message::PoolRelease(p.handle)] {
            prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn any_corruption_is_refused_or_round_trips(p in pooled(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = Message::PoolShare(p).encode();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        match Message::decode(&bytes) {
            Ok(m) => prop_assert_eq!(m.encode(), bytes),
            Err(e) => prop_assert!(e.to_string().starts_with("bad message from peer"), "{}", e),
        }
    }
}

fn share_bytes() -> Vec<u8> {
    let handle = PoolHandle { block: 1, offset: 4096, size: 65536, generation: 5 };
    let resource = ResourceDesc::Buffer(BufferDesc::new(65536, vk::BufferUsageFlags::TRANSFER_SRC));
    Message::PoolShare(PooledDesc { handle, resource, layout: vk::ImageLayout::UNDEFINED, row_pitch: 0 }).encode()
}

#[test]
fn bad_fields_are_named() {
    let put = |at: usize, v: &[u8]| {
        let mut b = share_bytes();
        b[at..at + v.len()].copy_from_slice(v);
        Message::decode(&b).unwrap_err().to_string()
    };
    // Body: block u32 @12, offset u64 @16, size u64 @24, generation u64 @32, kind @40, layout
    // @41, row pitch @45, buffer size @53.
    assert!(put(24, &0u64.to_le_bytes()).contains("empty or past"));
    assert!(put(16, &u64::MAX.to_le_bytes()).contains("empty or past"));
    assert!(put(32, &0u64.to_le_bytes()).contains("generation 0"));
    assert!(put(40, &[9]).contains("resource kind 9"));
    assert!(put(41, &77i32.to_le_bytes()).contains("layout 77"));
    assert!(put(45, &64u64.to_le_bytes()).contains("row pitch for a buffer"));
    assert!(put(53, &(1u64 << 20).to_le_bytes()).contains("does not fit"));
    let mut short = share_bytes();
    short.truncate(30);
    short[8..12].copy_from_slice(&18u32.to_le_bytes());
    assert!(Message::decode(&short).unwrap_err().to_string().contains("truncated at size"));
    let mut old = share_bytes();
    old[4..6].copy_from_slice(&1u16.to_le_bytes());
    assert!(Message::decode(&old).unwrap_err().to_string().contains("protocol version 1"));
    let block = BlockDesc {
        block: 0,
        size: 1 << 20,
        handle_type: HandleType::HostAllocation,
        memory_type_index: 0,
        device_uuid: [0; 16],
        driver_uuid: [0; 16],
    };
    assert!(Message::decode(&Message::PoolBlock(block).encode()).unwrap_err().to_string().contains("not opaque-fd"));
    assert_eq!(Message::PoolBlock(block).fd_count(), 1);
    assert_eq!(
        Message::PoolShare(
            Message::decode(&share_bytes())
                .map(|m| match m {
                    Message::PoolShare(p) => p,
                    _ => unreachable!(),
                })
                .unwrap()
        )
        .fd_count(),
        0
    );
}

/// The fuzzer's seeds hold one of each pool message, and they decode with this wire version
/// (`EXTMEM_WRITE_SEEDS=1` writes them afresh after a wire change).
#[test]
fn the_fuzz_seeds_hold_every_pool_message() {
    let handle = PoolHandle { block: 1, offset: 4096, size: 65536, generation: 5 };
    let block = BlockDesc {
        block: 1,
        size: 256 << 20,
        handle_type: HandleType::OpaqueFd,
        memory_type_index: 1,
        device_uuid: [7; 16],
        driver_uuid: [9; 16],
    };
    let image = ResourceDesc::Image(
        ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 64, 16, vk::ImageUsageFlags::TRANSFER_DST)
            .tiling(vk::ImageTiling::LINEAR),
    );
    let seeds = [
        ("seed-20-PoolBlock", Message::PoolBlock(block)),
        ("seed-21-PoolShare", Message::decode(&share_bytes()).unwrap()),
        (
            "seed-22-PoolShare",
            Message::PoolShare(PooledDesc {
                handle,
                resource: image,
                layout: vk::ImageLayout::GENERAL,
                row_pitch: 256,
            }),
        ),
        ("seed-23-PoolHeld", Message::PoolHeld(handle)),
        ("seed-24-PoolRelease", Message::PoolRelease(handle)),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/message_decode");
    for (name, message) in seeds {
        let path = dir.join(name);
        if std::env::var_os("EXTMEM_WRITE_SEEDS").is_some() {
            std::fs::write(&path, message.encode()).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(Message::decode(&bytes).unwrap(), message, "{name}");
    }
    // Every seed speaks this wire version (a seed the decoder refuses at the header teaches
    // the fuzzer nothing).
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(Message::decode(&bytes).is_ok(), "{} does not decode", path.display());
    }
}
