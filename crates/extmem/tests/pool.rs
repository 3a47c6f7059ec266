//! The exportable pool between two VkInstances of this process over a real socket pair, on
//! lavapipe with validation: lifetimes, several consumers, a consumer that goes away, bad
//! hand-offs and forged or stale handles (each refused with its reason), and descriptor
//! counts that stay flat over many hand-offs.

mod common;

use common::{assert_clean, context, fd_lock, open_fds};
use extmem::pool::{
    protocol, BlockDesc, Pool, PoolHandle, PoolImporter, PoolLink, PoolOptions, PooledDesc, PooledImport,
};
use extmem::transport::{Channel, Message};
use extmem::{vk, BufferDesc, Context, Error, ImageDesc, PathKind};
use std::sync::Arc;

fn usage() -> vk::BufferUsageFlags {
    vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST
}

fn small_pool(ctx: &Arc<Context>) -> Pool {
    Pool::new(ctx, PoolOptions::default().block_size(1 << 20)).unwrap()
}

/// The consumer's side of one hand-off: blocks first, then the share, answered on `ch`.
fn serve(importer: &mut PoolImporter, ch: &Channel) -> extmem::Result<PooledImport> {
    loop {
        let (message, mut fds) = ch.recv()?;
        let outcome = match message {
            Message::PoolBlock(desc) => importer.add_block(&desc, fds.pop().expect("checked by recv")).map(|_| None),
            Message::PoolShare(desc) => importer.bind(&desc).map(Some),
            other => Err(Error::Protocol(format!("unexpected {}", other.name()))),
        };
        match outcome {
            Ok(None) => continue,
            Ok(Some(import)) => {
                protocol::held(ch, &import.desc().handle)?;
                return Ok(import);
            }
            Err(e) => {
                protocol::refused(ch, &e)?;
                return Err(e);
            }
        }
    }
}

fn release(importer: &mut PoolImporter, ch: &Channel, import: PooledImport) {
    let h = importer.release(import).unwrap();
    protocol::released(ch, &h).unwrap();
}

/// Host-visible memory (lavapipe's only type): bytes written through one mapping are read
/// through the other.
fn map(ctx: &Context, memory: vk::DeviceMemory, h: &PoolHandle) -> Option<&'static mut [u8]> {
    // SAFETY: host-visible memory of the test, mapped for the range of a live sub-allocation,
    // unmapped by `unmap` before the memory is freed.
    unsafe {
        let p = ctx.device().map_memory(memory, h.offset, h.size, vk::MemoryMapFlags::empty()).ok()?;
        Some(std::slice::from_raw_parts_mut(p.cast(), h.size as usize))
    }
}
fn unmap(ctx: &Context, memory: vk::DeviceMemory) {
    // SAFETY: mapped by `map`.
    unsafe { ctx.device().unmap_memory(memory) };
}

#[test]
fn a_hand_off_is_metadata_and_both_sides_see_the_same_bytes() {
    let _lock = fd_lock();
    let (producer, consumer) = (context(PathKind::Khr), context(PathKind::Khr));
    let (a, b) = Channel::pair().unwrap();
    let pool = small_pool(&producer);
    let mut link = PoolLink::new(&pool, &a);
    let mut importer = PoolImporter::new(&consumer);
    let first = pool.buffer(BufferDesc::new(10_000, usage())).unwrap();
    link.share(&first).unwrap();
    let imported = serve(&mut importer, &b).unwrap();
    link.wait_held(&first.handle()).unwrap();
    assert!(link.has_block(first.handle().block));
    let h = first.handle();
    let flags = producer.memory_properties().memory_types[pool.memory_type_index() as usize].property_flags;
    if flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE) {
        let (mine, theirs) =
            (map(&producer, first.memory(), &h).unwrap(), map(&consumer, imported.memory(), &h).unwrap());
        mine.iter_mut().enumerate().for_each(|(i, v)| *v = (i * 7) as u8);
        assert!(theirs.iter().enumerate().all(|(i, v)| *v == (i * 7) as u8), "the consumer sees other bytes");
        unmap(&producer, first.memory());
        unmap(&consumer, imported.memory());
    } else {
        use std::io::Write;
        // Device-local blocks (NVIDIA): the CUDA pool test checks the bytes there.
        let _ = writeln!(std::io::stderr(), "SKIPPED the byte check: the pool's memory is not host-visible here");
    }

    // The second hand-off in the same block sends no descriptor.
    let fds = open_fds();
    let second =
        pool.image(ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 64, 64, vk::ImageUsageFlags::TRANSFER_DST)).unwrap();
    link.share(&second).unwrap();
    let (message, fds_with) = b.recv().unwrap();
    assert!(matches!(message, Message::PoolShare(_)) && fds_with.is_empty(), "got {message:?}");
    let Message::PoolShare(desc) = message else { unreachable!() };
    let image = importer.bind(&desc).unwrap();
    protocol::held(&b, &desc.handle).unwrap();
    link.wait_held(&second.handle()).unwrap();
    assert_eq!(open_fds(), fds, "a pooled hand-off opened descriptors");
    assert!(image.image().is_some() && second.handle().offset >= h.end(), "the image overlaps the buffer");
    // A LINEAR image carries its row pitch, so that other APIs can address its rows.
    let linear = pool
        .image(
            ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 100, 10, vk::ImageUsageFlags::TRANSFER_DST)
                .tiling(vk::ImageTiling::LINEAR),
        )
        .unwrap();
    assert!(linear.desc().row_pitch >= 400, "row pitch {}", linear.desc().row_pitch);
    link.share(&linear).unwrap();
    let linear_import = serve(&mut importer, &b).unwrap();
    link.wait_held(&linear.handle()).unwrap();
    assert_eq!(linear_import.desc().row_pitch, linear.desc().row_pitch);
    release(&mut importer, &b, linear_import);
    release(&mut importer, &b, image);
    release(&mut importer, &b, imported);
    drop((first, second, linear));
    link.poll().unwrap();
    assert_eq!(pool.stats().live, 0);
    drop((importer, link));
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn reused_only_when_the_producer_and_every_consumer_released() {
    let _lock = fd_lock();
    let producer = context(PathKind::Khr);
    let consumers = [context(PathKind::Khr), context(PathKind::Khr)];
    let pool = small_pool(&producer);
    let pairs: Vec<(Channel, Channel)> = (0..2).map(|_| Channel::pair().unwrap()).collect();
    let mut links: Vec<PoolLink<'_>> = pairs.iter().map(|(a, _)| PoolLink::new(&pool, a)).collect();
    let mut importers: Vec<PoolImporter> = consumers.iter().map(PoolImporter::new).collect();
    let pooled = pool.buffer(BufferDesc::new(4096, usage())).unwrap();
    let h = pooled.handle();
    let mut imports = Vec::new();
    for (i, link) in links.iter_mut().enumerate() {
        link.share(&pooled).unwrap();
        imports.push(serve(&mut importers[i], &pairs[i].1).unwrap());
        link.wait_held(&h).unwrap();
    }
    assert_eq!(pool.holders(&h), Some(2));
    drop(pooled);
    assert_eq!(pool.stats().live, 1, "freed while consumers hold it");
    let other = pool.buffer(BufferDesc::new(4096, usage())).unwrap();
    assert_ne!(other.handle().offset, h.offset, "the range was reused while held");
    release(&mut importers[0], &pairs[0].1, imports.remove(0));
    links[0].wait_released(&h).unwrap();
    assert_eq!(pool.holders(&h), Some(1));
    release(&mut importers[1], &pairs[1].1, imports.remove(0));
    links[1].wait_released(&h).unwrap();
    assert_eq!(pool.holders(&h), None);
    drop(other);
    let again = pool.buffer(BufferDesc::new(4096, usage())).unwrap();
    assert_eq!(again.handle().offset, h.offset, "the released range is reused first");
    assert!(again.handle().generation > h.generation);
    // A stale handle (the old generation) is refused on both sides.
    let e = pool.holders(&h);
    assert_eq!(e, None);
    pairs[0].1.send(&Message::PoolRelease(h), &[]).unwrap();
    let e = links[0].poll().unwrap_err().to_string();
    assert!(e.contains("stale") && e.contains("generation"), "{e}");
    let stats = pool.stats();
    assert_eq!((stats.blocks, stats.bytes_kept, stats.live), (1, 1 << 20, 1));
    assert!(stats.fragmentation >= 0.0 && stats.fragmentation < 1.0);
    drop((again, links, importers));
    assert_clean(&producer);
}

#[test]
fn a_consumer_that_goes_away_releases_everything_it_held() {
    let _lock = fd_lock();
    let (producer, consumer) = (context(PathKind::Khr), context(PathKind::Khr));
    let pool = small_pool(&producer);
    let (a, b) = Channel::pair().unwrap();
    let mut link = PoolLink::new(&pool, &a);
    let mut importer = PoolImporter::new(&consumer);
    let mut imports = Vec::new();
    for _ in 0..3 {
        let p = pool.buffer(BufferDesc::new(50_000, usage())).unwrap();
        link.share(&p).unwrap();
        imports.push(serve(&mut importer, &b).unwrap());
        link.wait_held(&p.handle()).unwrap();
    } // the producer dropped its references: the consumer alone holds them
    assert_eq!(pool.stats().live, 3);
    drop((imports, importer, b)); // disconnects without releasing
    let e = link.poll().unwrap_err();
    assert!(matches!(e, Error::Peer(_)), "{e}");
    assert_eq!(pool.stats().live, 0, "a dead consumer's references stayed");
    assert_eq!(pool.stats().largest_free, 1 << 20);
    drop(link);
    assert_clean(&producer);
}

#[test]
fn bad_hand_offs_are_refused_with_the_reason_and_nothing_leaks() {
    let _lock = fd_lock();
    let (producer, consumer) = (context(PathKind::Khr), context(PathKind::Khr));
    let pool = small_pool(&producer);
    let (a, b) = Channel::pair().unwrap();
    let mut link = PoolLink::new(&pool, &a);
    let mut importer = PoolImporter::new(&consumer);
    let p = pool.buffer(BufferDesc::new(8192, usage())).unwrap();
    link.share(&p).unwrap();
    let held = serve(&mut importer, &b).unwrap();
    link.wait_held(&p.handle()).unwrap();
    let fds = open_fds(); // the block, imported and kept, is counted
    let good = p.desc();
    let with = |handle: PoolHandle| PooledDesc { handle, ..good };
    let cases = [
        (with(PoolHandle { block: 7, ..good.handle }), "never sent"),
        (with(PoolHandle { offset: (1 << 20) - 4096, ..good.handle }), "outside"),
        (with(PoolHandle { offset: good.handle.offset + 4096, ..good.handle }), "overlaps"),
        (with(PoolHandle { offset: 65536, size: 100, ..good.handle }), "does not hold the resource"),
    ];
    for (desc, why) in cases {
        let e = importer.bind(&desc).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(why), "{desc:?}: expected {why:?}, got {e:?}");
    }
    assert_eq!(importer.held(), vec![good.handle], "a refused hand-off is held");
    // A block sent again is refused and its descriptor closed.
    let again = BlockDesc { block: good.handle.block, ..block_desc(&consumer, 1 << 20) };
    let memfd = rustix::fs::memfd_create("not-a-block", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let e = importer.add_block(&again, memfd).unwrap_err().to_string();
    assert!(e.contains("sent twice"), "{e}");
    // Not device memory: refused before the driver reads from it.
    let e = importer
        .add_block(&block_desc(&consumer, 4096), rustix::fs::open("/", rustix::fs::OFlags::RDONLY, 0.into()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory") && e.contains("not memory"), "{e}");
    // Producer side: forged and unknown handles from the consumer are refused.
    for forged in [PoolHandle { size: 1, ..good.handle }, PoolHandle { generation: 999, ..good.handle }] {
        b.send(&Message::PoolRelease(forged), &[]).unwrap();
        let e = link.poll().unwrap_err().to_string();
        assert!(e.contains("forged") || e.contains("stale"), "{e}");
    }
    assert_eq!(pool.holders(&good.handle), Some(1), "a forged release changed the holders");
    // A refusal reaches the producer with the consumer's reason.
    let q = pool.buffer(BufferDesc::new(4096, usage())).unwrap();
    link.share(&q).unwrap();
    let (m, _) = b.recv().unwrap();
    assert!(matches!(m, Message::PoolShare(_)));
    protocol::refused(&b, &Error::Pool("no room here".into())).unwrap();
    let e = link.wait_held(&q.handle()).unwrap_err().to_string();
    assert!(e.contains("no room here"), "{e}");
    assert_eq!(pool.holders(&q.handle()), Some(0));
    release(&mut importer, &b, held);
    drop((p, q));
    link.poll().unwrap();
    assert_eq!(pool.stats().live, 0);
    assert_eq!(open_fds(), fds, "descriptors leaked");
    drop((importer, link));
    assert_clean(&producer);
    assert_clean(&consumer);
}

fn block_desc(ctx: &Context, size: u64) -> BlockDesc {
    BlockDesc {
        block: 42,
        size,
        handle_type: extmem::HandleType::OpaqueFd,
        memory_type_index: 0,
        device_uuid: ctx.device_uuid(),
        driver_uuid: ctx.driver_uuid(),
    }
}

#[test]
fn descriptors_stay_flat_over_many_hand_offs_and_blocks_grow() {
    let _lock = fd_lock();
    let (producer, consumer) = (context(PathKind::Khr), context(PathKind::Khr));
    let pool = small_pool(&producer);
    let (a, b) = Channel::pair().unwrap();
    let mut link = PoolLink::new(&pool, &a);
    let mut importer = PoolImporter::new(&consumer);
    // Warm up: the first block and its import.
    let warm = pool.buffer(BufferDesc::new(4096, usage())).unwrap();
    link.share(&warm).unwrap();
    let w = serve(&mut importer, &b).unwrap();
    link.wait_held(&warm.handle()).unwrap();
    let fds = open_fds();
    for i in 0..200u64 {
        let p = pool.buffer(BufferDesc::new(4096 + i * 512, usage())).unwrap();
        link.share(&p).unwrap();
        let got = serve(&mut importer, &b).unwrap();
        link.wait_held(&p.handle()).unwrap();
        release(&mut importer, &b, got);
        link.wait_released(&p.handle()).unwrap();
    }
    assert_eq!(open_fds(), fds, "pooled hand-offs opened descriptors");
    assert_eq!(pool.stats().blocks, 1);
    // A request larger than a block gets a block of its own, sent once.
    let big = pool.buffer(BufferDesc::new(3 << 20, usage())).unwrap();
    link.share(&big).unwrap();
    let got = serve(&mut importer, &b).unwrap();
    link.wait_held(&big.handle()).unwrap();
    assert_eq!(big.handle().block, 1);
    assert_eq!(pool.stats().blocks, 2);
    // A new block may hold a descriptor of its own in each process (lavapipe backs exportable
    // memory with a memfd); nothing more.
    assert!(open_fds() <= fds + 2, "{} descriptors open, {fds} before the new block", open_fds());
    release(&mut importer, &b, got);
    release(&mut importer, &b, w);
    drop((warm, big));
    link.poll().unwrap();
    assert_eq!(pool.stats().live, 0);
    drop((importer, link));
    assert_clean(&producer);
    assert_clean(&consumer);
}

#[test]
fn pooled_round_trips_as_a_soak_repeats_them_keep_descriptors_and_blocks_flat() {
    let _lock = fd_lock();
    let (producer, consumer) = (context(PathKind::Khr), context(PathKind::Khr));
    let pool = small_pool(&producer);
    let (a, b) = Channel::pair().unwrap();
    // The consumer, as `extmem peer --pool` is: bind, say held, release at once.
    let server = std::thread::spawn(move || {
        let mut importer = PoolImporter::new(&consumer);
        let mut served = 0u64;
        while let Ok(import) = serve(&mut importer, &b) {
            release(&mut importer, &b, import);
            served += 1;
        }
        drop(importer);
        assert_clean(&consumer);
        served
    });
    let mut link = PoolLink::new(&pool, &a);
    link.round_trip(&pool.buffer(BufferDesc::new(4096, usage())).unwrap()).unwrap();
    let fds = open_fds();
    for i in 0..300u64 {
        let p = pool.buffer(BufferDesc::new(4096 + (i % 7) * 4096, usage())).unwrap();
        link.round_trip(&p).unwrap();
    }
    assert_eq!(open_fds(), fds, "pooled round trips opened descriptors");
    assert_eq!((pool.stats().blocks, pool.stats().live), (1, 0));
    drop(link);
    drop(a);
    assert_eq!(server.join().unwrap(), 301);
    assert_clean(&producer);
}
