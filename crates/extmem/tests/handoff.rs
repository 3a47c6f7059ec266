//! Hand-offs between two VkInstances of this process over a real socket pair, on lavapipe with
//! validation: the good path for images and buffers on both paths, every kind of bad input
//! with its error asserted and no descriptor leaked, and a thousand hand-offs in a loop.

mod common;

use common::{assert_clean, context, context_on, fd_lock, open_fds, rss};
use extmem::frames::{Frame, FrameProtocol, Role};
use extmem::sync::{SemaphoreKind, SharedSemaphore};
use extmem::transport::{Channel, Message};
use extmem::{
    pattern, vk, BufferDesc, Dedicated, Descriptor, Error, HandleType, Handoff, ImageDesc, PathKind, QueueKind,
    ResourceDesc, SharedMemory,
};
use std::os::fd::AsFd;

fn image_desc() -> ImageDesc {
    ImageDesc::new_2d(
        vk::Format::R8G8B8A8_UNORM,
        64,
        48,
        vk::ImageUsageFlags::TRANSFER_SRC | vk::ImageUsageFlags::TRANSFER_DST,
    )
}

fn buffer_desc() -> BufferDesc {
    BufferDesc { size: 100_000, usage: vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST }
}

fn new_shared(ctx: &std::sync::Arc<extmem::Context>, image: bool) -> SharedMemory {
    if image {
        SharedMemory::new_image(ctx, image_desc(), HandleType::OpaqueFd, Dedicated::Always).unwrap()
    } else {
        SharedMemory::new_buffer(ctx, buffer_desc(), HandleType::OpaqueFd, Dedicated::Never).unwrap()
    }
}

/// Sends `shared` over `a` and imports it on `b`'s side.
fn hand_off(
    a: &Channel,
    b: &Channel,
    shared: &SharedMemory,
    importer: &std::sync::Arc<extmem::Context>,
) -> extmem::Result<SharedMemory> {
    let (desc, fd) = shared.export()?;
    a.send(&Message::Share(desc), &[fd.as_fd()])?;
    drop(fd);
    let (desc, fd) = b.recv_share()?;
    SharedMemory::import(importer, &desc, fd)
}

/// A buffer frame and a 64-byte counter buffer made on `producer`, then both as `consumer`
/// imported them: `(frame, counter, their_frame, their_counter)`.
fn frame_with_counter(
    a: &Channel,
    b: &Channel,
    producer: &std::sync::Arc<extmem::Context>,
    consumer: &std::sync::Arc<extmem::Context>,
) -> (SharedMemory, SharedMemory, SharedMemory, SharedMemory) {
    let frame = new_shared(producer, false);
    let counter_desc = BufferDesc { size: 64, ..buffer_desc() };
    let counter = SharedMemory::new_buffer(producer, counter_desc, HandleType::OpaqueFd, Dedicated::Always).unwrap();
    let their_frame = hand_off(a, b, &frame, consumer).unwrap();
    let their_counter = hand_off(a, b, &counter, consumer).unwrap();
    (frame, counter, their_frame, their_counter)
}

/// Asserts that `imported` reads pattern `seed`, which `shared` holds, and that `shared` then
/// reads pattern `seed + 1` written through `imported`: the bytes cross both ways.
fn assert_bytes_cross_both_ways(shared: &SharedMemory, imported: &SharedMemory, seed: u64, what: &str) {
    let len = shared.data_len().unwrap() as usize;
    assert_eq!(
        pattern::first_mismatch(&imported.read(Handoff::host()).unwrap(), seed),
        None,
        "{what}: the importer reads the exporter's bytes"
    );
    imported.write(&pattern::fill(len, seed + 1), Handoff::host()).unwrap();
    assert_eq!(
        pattern::first_mismatch(&shared.read(Handoff::host()).unwrap(), seed + 1),
        None,
        "{what}: the exporter reads the importer's bytes"
    );
}

#[test]
fn images_and_buffers_cross_instances_both_ways_on_both_paths() {
    let _lock = fd_lock();
    for path in [PathKind::Nv, PathKind::Khr] {
        let producer = context(path);
        let consumer = context(PathKind::Khr);
        let (a, b) = Channel::pair().unwrap();
        for image in [true, false] {
            let shared = new_shared(&producer, image);
            let len = shared.data_len().unwrap() as usize;
            shared.write(&pattern::fill(len, 7), Handoff::host()).unwrap();
            let imported = hand_off(&a, &b, &shared, &consumer).unwrap();
            assert_eq!(imported.desc(), shared.desc());
            assert_bytes_cross_both_ways(&shared, &imported, 7, &format!("{path:?} image={image}"));
        }
        assert_clean(&producer);
        assert_clean(&consumer);
    }
}

/// Runs `scenario` and checks that the process has as many descriptors afterwards as before.
fn no_leak(name: &str, scenario: impl FnOnce()) {
    let before = open_fds();
    scenario();
    assert_eq!(open_fds(), before, "{name}: descriptors leaked");
}

fn expect_err<T>(r: extmem::Result<T>, what: &str) -> Error {
    match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => e,
    }
}

#[test]
fn corrupt_messages_are_rejected_and_their_descriptors_closed() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let shared = new_shared(&producer, true);
    let (a, b) = Channel::pair().unwrap();
    let good = Message::Share(shared.descriptor()).encode();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "wrong magic",
            {
                let mut m = good.clone();
                m[0] = b'X';
                m
            },
            "magic",
        ),
        (
            "wrong version",
            {
                let mut m = good.clone();
                m[4] = 9;
                m
            },
            "version",
        ),
        (
            "unknown type",
            {
                let mut m = good.clone();
                m[6] = 99;
                m
            },
            "unknown message type",
        ),
        ("truncated", good[..good.len() - 5].to_vec(), "body length"),
        ("header only", good[..10].to_vec(), "truncated"),
        (
            "trailing bytes",
            {
                let mut m = good.clone();
                m.push(0);
                m
            },
            "body length",
        ),
        ("oversized", vec![0u8; extmem::transport::message::MAX_MESSAGE + 100], "limit"),
    ];
    // A length field that agrees with a body that carries an extra byte.
    let mut trailing = good.clone();
    trailing.push(0);
    let len = (trailing.len() - 12) as u32;
    trailing[8..12].copy_from_slice(&len.to_le_bytes());
    cases.push(("trailing bytes, length adjusted", trailing, "trailing"));
    // Out-of-range values: zero allocation size (offset 5 in the body).
    let mut zero = good.clone();
    zero[12 + 5..12 + 13].copy_from_slice(&0u64.to_le_bytes());
    cases.push(("zero allocation size", zero, "allocation size"));
    let mut handle = good.clone();
    handle[12 + 1..12 + 5].copy_from_slice(&0x3u32.to_le_bytes());
    cases.push(("two handle types", handle, "handle type"));

    for (name, bytes, says) in cases {
        no_leak(name, || {
            let (_, fd) = shared.export().unwrap();
            a.send_bytes(&bytes, &[fd.as_fd()]).unwrap();
            drop(fd);
            let e = expect_err(b.recv(), name);
            assert!(matches!(e, Error::Protocol(_)), "{name}: {e}");
            assert!(e.to_string().contains(says), "{name}: {e} (should say {says:?})");
        });
    }
    // The right message with the wrong number of descriptors.
    no_leak("Share without its descriptor", || {
        a.send_bytes(&good, &[]).unwrap();
        let e = expect_err(b.recv(), "Share without fd");
        assert!(e.to_string().contains("came with 0 descriptor(s)"), "{e}");
    });
    no_leak("FrameReady with a descriptor", || {
        let (_, fd) = shared.export().unwrap();
        a.send_bytes(&Message::FrameReady { frame: 1 }.encode(), &[fd.as_fd()]).unwrap();
        drop(fd);
        let e = expect_err(b.recv(), "FrameReady with fd");
        assert!(e.to_string().contains("came with 1 descriptor(s)"), "{e}");
    });
    no_leak("Share with two descriptors", || {
        let (_, f1) = shared.export().unwrap();
        let (_, f2) = shared.export().unwrap();
        a.send_bytes(&good, &[f1.as_fd(), f2.as_fd()]).unwrap();
        drop((f1, f2));
        let e = expect_err(b.recv(), "two fds");
        assert!(e.to_string().contains("came with 2 descriptor(s)"), "{e}");
    });
    // `send` itself refuses a mismatch.
    assert!(a.send(&Message::Share(shared.descriptor()), &[]).is_err());
    drop(shared);
    assert_clean(&producer);
}

#[test]
fn imports_that_cannot_work_are_refused_with_the_reason_and_close_the_fd() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let consumer = context(PathKind::Khr);
    let shared = new_shared(&producer, true);
    let import = |name: &str, edit: &dyn Fn(&mut Descriptor), says: &str| {
        no_leak(name, || {
            let (mut desc, fd) = shared.export().unwrap();
            edit(&mut desc);
            let e = expect_err(SharedMemory::import(&consumer, &desc, fd), name);
            assert!(matches!(e, Error::Import(_)), "{name}: {e}");
            assert!(e.to_string().contains(says), "{name}: {e} (should say {says:?})");
        });
    };
    import("wrong device UUID", &|d| d.device_uuid[0] ^= 0xff, "another device or driver");
    import("wrong driver UUID", &|d| d.driver_uuid[15] ^= 1, "another device or driver");
    import("allocation too small", &|d| d.allocation_size = 4096, "the shared allocation has 4096 bytes");
    import(
        "image larger than the memory",
        &|d| {
            if let ResourceDesc::Image(i) = &mut d.resource {
                i.extent.width *= 4;
            }
        },
        "the shared allocation has",
    );
    import(
        "memory type that does not exist",
        &|d| {
            d.memory_type_index = 17;
            d.memory_type_bits = 1 << 17;
        },
        "memory type 17 does not fit",
    );
    import("handle type the device lacks", &|d| d.handle_type = HandleType::DmaBuf, "VK_EXT_external_memory_dma_buf");
    import("dedicated with an offset", &|d| d.offset = 256, "offset 256");
    import("an image as host memory", &|d| d.handle_type = HandleType::HostAllocation, "comes as a buffer");
    // A well-formed import works after all those refusals, and the fd goes to Vulkan.
    no_leak("good import", || {
        let (desc, fd) = shared.export().unwrap();
        let imported = SharedMemory::import(&consumer, &desc, fd).unwrap();
        drop(imported);
    });
    drop(shared);
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn a_peer_that_closes_at_any_step_is_reported_without_hanging_or_leaking() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let consumer = context(PathKind::Khr);
    let shared = new_shared(&producer, false);
    // The consumer goes away before the share, after it, and after FrameReady.
    for step in 0..3 {
        no_leak(&format!("consumer gone at step {step}"), || {
            let (a, b) = Channel::pair().unwrap();
            let mut held = None;
            if step >= 1 {
                held = Some(hand_off(&a, &b, &shared, &consumer).unwrap());
            }
            if step >= 2 {
                FrameProtocol::new(&a, Role::Producer).signal_ready(Frame::new(0)).unwrap();
            }
            drop(b);
            drop(held);
            let e = match step {
                0 => expect_err(
                    a.send(&Message::Share(shared.descriptor()), &[shared.export().unwrap().1.as_fd()]),
                    "send to a closed peer",
                ),
                _ => {
                    expect_err(FrameProtocol::new(&a, Role::Producer).wait_done(Frame::new(0)), "wait on a closed peer")
                }
            };
            assert!(matches!(e, Error::Peer(_)), "step {step}: {e}");
        });
    }
    // The producer goes away before the share and after FrameReady; the consumer waits.
    for step in 0..2 {
        no_leak(&format!("producer gone at step {step}"), || {
            let (a, b) = Channel::pair().unwrap();
            if step == 1 {
                let imported = hand_off(&a, &b, &shared, &consumer).unwrap();
                drop(a);
                let e = expect_err(
                    FrameProtocol::new(&b, Role::Consumer).wait_ready(Frame::new(0)),
                    "wait_ready on a closed peer",
                );
                assert!(e.to_string().contains("closed the connection"), "{e}");
                drop(imported);
            } else {
                drop(a);
                let e = expect_err(b.recv_share(), "recv_share on a closed peer");
                assert!(e.to_string().contains("closed the connection"), "{e}");
            }
        });
    }
    // A peer that stays connected but silent is reported after the timeout.
    let (a, mut b) = Channel::pair().unwrap();
    b.set_timeout(std::time::Duration::from_millis(100));
    let e = expect_err(b.recv(), "silent peer");
    assert!(e.to_string().contains("sent nothing within 0.1 s"), "{e}");
    drop(a);
    drop(shared);
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn a_thousand_hand_offs_keep_descriptors_and_memory_flat() {
    let _lock = fd_lock();
    let producer = context(PathKind::Nv);
    let consumer = context(PathKind::Khr);
    let shared = new_shared(&producer, false);
    shared.write(&pattern::fill(buffer_desc().size as usize, 1), Handoff::host()).unwrap();
    let (a, b) = Channel::pair().unwrap();
    let round = || {
        let imported = hand_off(&a, &b, &shared, &consumer).unwrap();
        drop(imported);
    };
    for _ in 0..100 {
        round();
    }
    let (fds, mem) = (open_fds(), rss());
    for _ in 0..900 {
        round();
    }
    assert_eq!(open_fds(), fds, "descriptors grew over 900 hand-offs");
    let grown = rss().saturating_sub(mem);
    assert!(grown < 16 << 20, "resident memory grew by {} KiB over 900 hand-offs", grown >> 10);
    // The memory is still the same memory.
    let last = hand_off(&a, &b, &shared, &consumer).unwrap();
    assert_eq!(pattern::first_mismatch(&last.read_prefix(4096, Handoff::host()).unwrap(), 1), None);
    drop(last);
    drop(shared);
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn exporting_what_the_device_cannot_is_a_clear_error() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let e = expect_err(
        SharedMemory::new_buffer(&producer, buffer_desc(), HandleType::DmaBuf, Dedicated::Always),
        "dma-buf export",
    );
    assert!(matches!(e, Error::Unsupported(_)) && e.to_string().contains("dma_buf"), "{e}");
    let weird = ImageDesc { format: vk::Format::BC1_RGB_UNORM_BLOCK, ..image_desc() };
    let e = expect_err(
        SharedMemory::new_image(
            &producer,
            ImageDesc { usage: vk::ImageUsageFlags::STORAGE, ..weird },
            HandleType::OpaqueFd,
            Dedicated::Always,
        ),
        "BC1 storage image",
    );
    assert!(e.to_string().contains("cannot export"), "{e}");
    assert_clean(&producer);
}

#[test]
fn timeline_semaphore_orders_both_sides_on_the_gpu_where_supported() {
    semaphore_orders_both_sides(SemaphoreKind::Timeline);
}

#[test]
fn binary_semaphore_orders_both_sides_on_the_gpu_where_supported() {
    semaphore_orders_both_sides(SemaphoreKind::Binary);
}

fn semaphore_orders_both_sides(kind: SemaphoreKind) {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let consumer = context(PathKind::Khr);
    let name = kind.name();
    if !extmem::sync::can_share_semaphores(&producer, kind) {
        let e = expect_err(SharedSemaphore::new(&producer, kind), "semaphore on a driver without them");
        assert!(e.to_string().contains(&format!("cannot export {name} semaphores")), "{e}");
        // Written past the harness's capture, so the skip shows in every run.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the GPU part of the {name} semaphore test: {} cannot share {name} semaphores (run scripts/gpu-check.sh on a GPU)",
            producer.device_name()
        );
        return;
    }
    let scenario = || {
        let sem = SharedSemaphore::new(&producer, kind).unwrap();
        let theirs = SharedSemaphore::import_as(&consumer, sem.export().unwrap(), kind).unwrap();
        assert_eq!(theirs.kind(), kind);
        let shared = new_shared(&producer, true);
        let (a, b) = Channel::pair().unwrap();
        let imported = hand_off(&a, &b, &shared, &consumer).unwrap();
        let producing = FrameProtocol::new(&a, Role::Producer).semaphore(Some(&sem));
        let consuming = FrameProtocol::new(&b, Role::Consumer).semaphore(Some(&theirs));
        let len = shared.data_len().unwrap() as usize;
        for frame in 0..5u64 {
            // Timeline: values grow. Binary: the values are ignored; each signal is consumed by
            // the next wait, and every signal is submitted before its wait.
            let f = Frame::new(frame);
            shared.write(&pattern::fill(len, frame), producing.around(f)).unwrap();
            let seen = imported.read(consuming.before(f)).unwrap();
            assert_eq!(pattern::first_mismatch(&seen, frame), None, "{name} frame {frame}");
            imported.write(&pattern::fill(len, 100 + frame), consuming.after(f)).unwrap();
            let back = shared.read(producing.after_peer(f)).unwrap();
            assert_eq!(pattern::first_mismatch(&back, 100 + frame), None, "{name} frame {frame} back");
        }
        match kind {
            SemaphoreKind::Timeline => {
                assert_eq!(sem.value().unwrap(), 10);
                assert_eq!(theirs.value().unwrap(), 10, "both instances see one semaphore");
            }
            _ => assert!(sem.value().unwrap_err().to_string().contains("binary semaphore has no value")),
        }
        drop((imported, shared, theirs, sem));
    };
    // The first run also fills the contexts' caches of reusable fences (a descriptor each on
    // some drivers); the second must leave the count where it found it.
    scenario();
    no_leak("semaphore hand-offs", scenario);
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn a_counter_written_after_the_frame_is_seen_by_the_other_instance() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let consumer = context(PathKind::Khr);
    let (a, b) = Channel::pair().unwrap();
    let (frame, counter, their_frame, their_counter) = frame_with_counter(&a, &b, &producer, &consumer);
    let len = frame.data_len().unwrap() as usize;
    for n in 1..=3u32 {
        frame.write(&pattern::fill(len, n as u64), Handoff::host().counter(&counter, 8, n)).unwrap();
        assert_eq!(their_counter.read_prefix(12, Handoff::host()).unwrap()[8..12], n.to_le_bytes());
        assert_eq!(pattern::first_mismatch(&their_frame.read(Handoff::host()).unwrap(), n as u64), None);
    }
    // A frame produced on the GPU without host copies, submitted without waiting.
    let pending = frame.fill(0xA5A5_5A5A, Handoff::host().counter(&counter, 8, 99)).unwrap();
    pending.wait().unwrap();
    assert_eq!(their_counter.read_prefix(12, Handoff::host()).unwrap()[8..12], 99u32.to_le_bytes());
    assert!(their_frame.read(Handoff::host()).unwrap().chunks(4).all(|c| c == 0xA5A5_5A5Au32.to_le_bytes()));
    let e = expect_err(
        frame.fill(1, Handoff::host().counter(&frame, 0, 1)).and_then(|s| s.wait()),
        "counter in the frame itself",
    );
    assert!(e.to_string().contains("another buffer"), "{e}");
    let e = expect_err(
        frame.write(&pattern::fill(len, 0), Handoff::host().counter(&counter, 62, 1)),
        "counter past the end",
    );
    assert!(e.to_string().contains("counter at offset 62"), "{e}");
    drop((their_frame, their_counter, frame, counter));
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn a_linear_image_carries_its_row_pitch() {
    let _lock = fd_lock();
    let producer = context(PathKind::Nv);
    let consumer = context(PathKind::Khr);
    let desc = image_desc().tiling(vk::ImageTiling::LINEAR);
    let shared = SharedMemory::new_image(&producer, desc, HandleType::OpaqueFd, Dedicated::Always).unwrap();
    let d = shared.descriptor();
    assert!(d.row_pitch >= 64 * 4, "row pitch {} for 64 RGBA8 texels", d.row_pitch);
    assert_eq!(new_shared(&producer, true).descriptor().row_pitch, 0, "no row pitch for an optimal-tiling image");
    let (a, b) = Channel::pair().unwrap();
    shared.write(&pattern::fill(shared.data_len().unwrap() as usize, 5), Handoff::host()).unwrap();
    let imported = hand_off(&a, &b, &shared, &consumer).unwrap();
    assert_eq!(pattern::first_mismatch(&imported.read(Handoff::host()).unwrap(), 5), None);
    drop((imported, shared));
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn every_queue_kind_produces_frames_the_other_instance_reads() {
    let _lock = fd_lock();
    let consumer = context(PathKind::Khr);
    let (a, b) = Channel::pair().unwrap();
    for kind in [QueueKind::General, QueueKind::Compute, QueueKind::Transfer] {
        let producer = context_on(PathKind::Nv, kind);
        // The family is the one asked for where the device has it (NVIDIA: all three; lavapipe
        // has one family for everything, which every kind falls back to).
        // SAFETY: a live physical device.
        let families =
            unsafe { producer.instance().get_physical_device_queue_family_properties(producer.physical_device()) };
        let has = |f: &dyn Fn(vk::QueueFlags) -> bool| families.iter().any(|p| p.queue_count > 0 && f(p.queue_flags));
        let flags = producer.queue_flags();
        let gc = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
        match kind {
            QueueKind::General => assert!(flags.intersects(gc), "{flags:?}"),
            QueueKind::Compute
                if has(&|f| f.contains(vk::QueueFlags::COMPUTE) && !f.contains(vk::QueueFlags::GRAPHICS)) =>
            {
                assert!(
                    flags.contains(vk::QueueFlags::COMPUTE) && !flags.contains(vk::QueueFlags::GRAPHICS),
                    "{flags:?}"
                )
            }
            QueueKind::Transfer if has(&|f| f.contains(vk::QueueFlags::TRANSFER) && !f.intersects(gc)) => {
                assert!(!flags.intersects(gc), "{flags:?}")
            }
            _ => {}
        }
        for image in [true, false] {
            let shared = new_shared(&producer, image);
            let len = shared.data_len().unwrap() as usize;
            shared.write(&pattern::fill(len, 11), Handoff::host()).unwrap();
            let imported = hand_off(&a, &b, &shared, &consumer).unwrap();
            assert_bytes_cross_both_ways(&shared, &imported, 11, &format!("{kind:?} image={image}"));
        }
        // A frame filled on the GPU with its counter, from this queue.
        let (frame, counter, their_frame, their_counter) = frame_with_counter(&a, &b, &producer, &consumer);
        frame.fill(0x0102_0304, Handoff::host().counter(&counter, 0, 5)).unwrap().wait().unwrap();
        assert_eq!(their_counter.read_prefix(4, Handoff::host()).unwrap(), 5u32.to_le_bytes(), "{kind:?}");
        assert!(
            their_frame.read(Handoff::host()).unwrap().chunks(4).all(|c| c == 0x0102_0304u32.to_le_bytes()),
            "{kind:?}"
        );
        drop((their_frame, their_counter, frame, counter));
        assert_clean(&producer);
    }
    assert_clean(&consumer);
}

#[test]
fn host_memory_crosses_instances_and_devices_and_the_host_sees_the_bytes() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let consumer = context(PathKind::Khr);
    if !producer.supports_handle_type(HandleType::HostAllocation) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED host memory: {} has no VK_EXT_external_memory_host",
            producer.device_name()
        );
        return;
    }
    let host = HandleType::HostAllocation;
    let scenario = || {
        let (a, b) = Channel::pair().unwrap();
        let shared = SharedMemory::new_buffer(&producer, buffer_desc(), host, Dedicated::Always).unwrap();
        assert!(!shared.is_dedicated(), "host-pointer imports cannot be dedicated");
        let len = shared.data_len().unwrap() as usize;
        shared.write(&pattern::fill(len, 21), Handoff::host()).unwrap();
        // SAFETY: `write` waited for the GPU's copy; nothing writes the pages now.
        let seen = unsafe { shared.host_mapping().unwrap().bytes() };
        assert_eq!(pattern::first_mismatch(&seen[..len], 21), None, "the host sees what the GPU wrote");

        // The descriptor says another device made it: host memory does not care.
        let (mut desc, fd) = shared.export().unwrap();
        desc.device_uuid = [7; 16];
        desc.driver_uuid = [9; 16];
        a.send(&Message::Share(desc), &[fd.as_fd()]).unwrap();
        drop(fd);
        let (desc, fd) = b.recv_share().unwrap();
        let imported = SharedMemory::import(&consumer, &desc, fd).unwrap();
        assert_bytes_cross_both_ways(&shared, &imported, 21, "host memory");
        // SAFETY: as above.
        let seen = unsafe { shared.host_mapping().unwrap().bytes() };
        assert_eq!(pattern::first_mismatch(&seen[..len], 22), None);

        // What cannot work is refused, with the fd closed.
        let e = expect_err(
            SharedMemory::new_image(&producer, image_desc(), host, Dedicated::Always),
            "an image in host memory",
        );
        assert!(e.to_string().contains("buffers only"), "{e}");
        let (mut desc, fd) = shared.export().unwrap();
        desc.allocation_size *= 2;
        let e = expect_err(SharedMemory::import(&consumer, &desc, fd), "more bytes than the file holds");
        assert!(e.to_string().contains("the descriptor says"), "{e}");
        let (mut desc, fd) = shared.export().unwrap();
        desc.offset = 4096;
        let e = expect_err(SharedMemory::import(&consumer, &desc, fd), "an offset");
        assert!(e.to_string().contains("offset 0"), "{e}");
        drop((imported, shared));
    };
    scenario();
    no_leak("host memory hand-offs", scenario);
    assert_clean(&producer);
    assert_clean(&consumer);
}
