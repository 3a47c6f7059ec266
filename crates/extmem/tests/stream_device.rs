//! Streams in device memory and host memory with Vulkan on both sides (lavapipe, validation
//! on): images and buffers through the ring, a held frame never rewritten while the publisher
//! waits for it, a numpy-style CPU publisher read by a Vulkan subscriber, and no validation
//! message anywhere.

mod common;
mod stream_support;

use common::{assert_clean, context};
use extmem::stream::{Memory, Policy, Publisher, StreamOptions, SubscribeOptions, Subscriber};
use extmem::{pattern, vk, BufferDesc, Handoff, ImageDesc, PathKind};
use std::time::Duration;
use stream_support::unique;

fn image() -> ImageDesc {
    ImageDesc::new_2d(
        vk::Format::R8G8B8A8_UNORM,
        64,
        32,
        vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST,
    )
}

#[test]
fn device_image_and_buffer_streams_carry_every_frame_with_validation_clean() {
    let (pub_ctx, sub_ctx) = (context(PathKind::Khr), context(PathKind::Khr));
    let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
    for options in [StreamOptions::image(image()), StreamOptions::buffer(BufferDesc::new(10_000, usage))] {
        let name = unique("device");
        let mut p = Publisher::create(&pub_ctx, &name, options.slots(3)).unwrap();
        let mut s = Subscriber::connect(&sub_ctx, &name).unwrap();
        for n in 0..8u64 {
            let slot = p.acquire().unwrap();
            let memory = slot.memory().expect("device memory");
            let len = memory.data_len().unwrap() as usize;
            memory.write(&pattern::fill(len, n), slot.handoff()).unwrap();
            p.publish(slot, Handoff::host()).unwrap();
            let f = s.next().unwrap().expect("a frame");
            assert_eq!(f.index(), n);
            let bytes = f.memory().expect("imported").read(f.handoff()).unwrap();
            assert_eq!(pattern::first_mismatch(&bytes, n), None, "frame {n}");
        }
        drop(p);
        assert!(s.next().unwrap().is_none());
    }
    assert_clean(&pub_ctx);
    assert_clean(&sub_ctx);
}

#[test]
fn a_held_frame_is_not_rewritten_while_the_publisher_waits_for_its_slot() {
    let (pub_ctx, sub_ctx) = (context(PathKind::Khr), context(PathKind::Khr));
    let name = unique("slowreader");
    let options = StreamOptions::image(image()).slots(2).policy(Policy::Every);
    let mut p = Publisher::create(&pub_ctx, &name, options).unwrap();
    let mut s = Subscriber::connect(&sub_ctx, &name).unwrap();
    let write = |p: &mut Publisher, n: u64| {
        let slot = p.acquire().unwrap();
        let m = slot.memory().unwrap();
        m.write(&pattern::fill(m.data_len().unwrap() as usize, n), slot.handoff()).unwrap();
        p.publish(slot, Handoff::host()).unwrap();
    };
    write(&mut p, 0);
    write(&mut p, 1);
    let frame0 = s.next().unwrap().unwrap();
    let frame1 = s.next().unwrap().unwrap();
    // Frame 2 goes into frame 0's slot: the publisher's thread waits while frame 0 is read.
    let writer = std::thread::spawn(move || {
        write(&mut p, 2);
        p
    });
    std::thread::sleep(Duration::from_millis(100));
    let again = frame0.memory().unwrap().read(frame0.handoff()).unwrap();
    assert_eq!(pattern::first_mismatch(&again, 0), None, "frame 0 intact while held");
    drop(frame0);
    let p = writer.join().unwrap();
    drop(frame1);
    let f2 = s.next().unwrap().unwrap();
    assert_eq!(f2.index(), 2);
    assert_eq!(pattern::first_mismatch(&f2.memory().unwrap().read(f2.handoff()).unwrap(), 2), None);
    drop(f2);
    drop(p);
    assert_clean(&pub_ctx);
    assert_clean(&sub_ctx);
}

#[test]
fn a_cpu_publisher_in_host_memory_reaches_a_vulkan_subscriber() {
    let sub_ctx = context(PathKind::Khr);
    if !sub_ctx.supports_handle_type(extmem::HandleType::HostAllocation) {
        println!("SKIPPED: {} cannot import host memory", sub_ctx.device_name());
        return;
    }
    let name = unique("cpu2vk");
    let options = StreamOptions::image(image()).memory(Memory::Host).slots(3);
    let mut p = Publisher::create_host(&name, options).unwrap();
    let mut s = Subscriber::connect_with(&sub_ctx, &name, SubscribeOptions::default()).unwrap();
    assert!(s.is_host_memory());
    assert_eq!(s.extent(), (64, 32));
    for n in 0..5u64 {
        let mut slot = p.acquire().unwrap();
        slot.write_host(&pattern::fill(64 * 32 * 4, n)).unwrap();
        p.publish(slot, Handoff::host()).unwrap();
        let f = s.next().unwrap().unwrap();
        let read = f.memory().expect("imported into Vulkan").read(f.handoff()).unwrap();
        assert_eq!(pattern::first_mismatch(&read[..64 * 32 * 4], n), None, "frame {n} through Vulkan");
        assert_eq!(pattern::first_mismatch(&f.to_vec().unwrap(), n), None, "frame {n} on the host");
    }
    assert_clean(&sub_ctx);
}

#[test]
fn a_device_stream_needs_a_vulkan_subscriber() {
    let pub_ctx = context(PathKind::Khr);
    let name = unique("needsvk");
    let _p = Publisher::create(&pub_ctx, &name, StreamOptions::image(image()).slots(2)).unwrap();
    let e = Subscriber::connect_host(&name, SubscribeOptions::default()).err().expect("refused").to_string();
    assert!(e.contains("device memory") && e.contains("Vulkan context"), "{e}");
    assert_clean(&pub_ctx);
}
