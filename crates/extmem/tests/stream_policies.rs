//! Streams in host memory between processes (subscribers with no Vulkan device): every frame
//! to every subscriber, the latest frame to a slow one, joins and leaves at any moment, several
//! streams per process, names, and descriptors left open.

mod stream_support;

use extmem::stream::{Memory, Policy, Publisher, StreamOptions, SubscribeOptions, Subscriber, Wait};
use extmem::{pattern, vk, BufferDesc, ImageDesc};
use std::time::Duration;
use stream_support::*;

const ENTRY: &str = "child";

fn image_options(policy: Policy, slots: u32) -> StreamOptions {
    let desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 32, 16, vk::ImageUsageFlags::TRANSFER_SRC);
    StreamOptions::image(desc).memory(Memory::Host).policy(policy).slots(slots)
}

fn publish(p: &mut Publisher, n: u64, len: usize) {
    let mut slot = p.acquire().unwrap();
    assert_eq!(slot.index(), n);
    slot.write_host(&frame_bytes(len, n)).unwrap();
    slot.set_metadata(format!("frame {n}").as_bytes()).unwrap();
    p.publish(slot, extmem::Handoff::host()).unwrap();
}

/// Child roles: `take NAME WAIT DELAY_MS MAX` takes frames until the end (or MAX), checking
/// each frame's pattern and metadata, sleeping DELAY_MS while holding each; prints one
/// `RESULT index` line per frame.
#[test]
fn child() {
    let Some((role, args)) = role() else { return };
    let code = match role.as_str() {
        "take" => take(&args),
        other => panic!("unknown role {other}"),
    };
    std::process::exit(code);
}

fn take(args: &[String]) -> i32 {
    let wait = match args[1].as_str() {
        "poll" => Wait::Poll,
        "sleep" => Wait::Sleep,
        _ => Wait::Adaptive,
    };
    let delay: u64 = args[2].parse().unwrap();
    let max: u64 = args[3].parse().unwrap();
    let options = SubscribeOptions::default().wait(wait).timeout(Duration::from_secs(60));
    let mut sub = match Subscriber::connect_host(&args[0], options) {
        Ok(s) => s,
        Err(e) => {
            println!("ERROR {e}");
            return 3;
        }
    };
    println!("JOINED");
    let mut taken = 0;
    while taken < max {
        match sub.next() {
            Ok(Some(f)) => {
                let bytes = f.to_vec().expect("host frame");
                if let Some((at, seen, want)) = pattern::first_mismatch(&bytes, f.index()) {
                    println!("ERROR frame {}: byte {at} is {seen}, the pattern says {want}", f.index());
                    return 4;
                }
                if f.metadata() != format!("frame {}", f.index()).as_bytes() {
                    println!("ERROR frame {}: metadata {:?}", f.index(), f.metadata());
                    return 5;
                }
                std::thread::sleep(Duration::from_millis(delay));
                // Still the same bytes after the hold: the publisher did not rewrite a held slot.
                if f.to_vec().unwrap() != bytes {
                    println!("ERROR frame {} changed while held", f.index());
                    return 6;
                }
                println!("RESULT {}", f.index());
                taken += 1;
            }
            Ok(None) => break,
            Err(e) => {
                println!("ERROR {e}");
                return 7;
            }
        }
    }
    0
}

fn indices(stdout: &str) -> Vec<u64> {
    results(stdout).iter().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn every_frame_reaches_every_subscriber_in_order() {
    let _serial = serial();
    let name = unique("every");
    let mut p = Publisher::create_host(&name, image_options(Policy::Every, 3)).unwrap();
    let children: Vec<_> =
        ["poll", "sleep", "adaptive"].iter().map(|w| spawn(ENTRY, "take", &[&name, w, "0", "1000"])).collect();
    eventually("three subscribers joined", || p.subscribers() == 3);
    for n in 0..60 {
        publish(&mut p, n, 32 * 16 * 4);
    }
    drop(p);
    for c in children {
        assert_eq!(indices(&finish(c, 0)), (0..60).collect::<Vec<_>>());
    }
}

#[test]
fn a_slow_subscriber_of_latest_skips_to_the_newest_and_the_publisher_never_waits() {
    let _serial = serial();
    let name = unique("latest");
    let mut p = Publisher::create_host(&name, image_options(Policy::Latest, 3)).unwrap();
    let c = spawn(ENTRY, "take", &[&name, "adaptive", "3", "1000"]);
    eventually("the subscriber joined", || p.subscribers() == 1);
    for n in 0..300 {
        publish(&mut p, n, 32 * 16 * 4);
        std::thread::sleep(Duration::from_micros(100));
    }
    drop(p);
    let seen = indices(&finish(c, 0));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {seen:?}");
    assert!(seen.len() < 300, "a subscriber holding each frame 3 ms skipped frames: {}", seen.len());
    assert_eq!(seen.last(), Some(&299), "the newest frame is the last one seen");
}

#[test]
fn a_latest_join_that_would_leave_fewer_than_two_free_slots_is_refused_with_the_count() {
    let _serial = serial();
    let name = unique("full");
    let p = Publisher::create_host(&name, image_options(Policy::Latest, 3)).unwrap();
    let _first = Subscriber::connect_host(&name, SubscribeOptions::default()).unwrap();
    eventually("the first subscriber joined", || p.subscribers() == 1);
    let e = Subscriber::connect_host(&name, SubscribeOptions::default()).err().expect("refused");
    let e = e.to_string();
    assert!(e.contains("1 free slot") && e.contains("needs 2"), "{e}");
    assert_eq!(p.subscribers(), 1);
}

#[test]
fn subscribers_join_and_leave_mid_stream_and_see_contiguous_frames() {
    let _serial = serial();
    let name = unique("joinleave");
    let options =
        StreamOptions::buffer(BufferDesc::new(5000, vk::BufferUsageFlags::TRANSFER_SRC)).memory(Memory::Host).slots(4);
    let mut p = Publisher::create_host(&name, options).unwrap();
    let early = spawn(ENTRY, "take", &[&name, "adaptive", "0", "15"]);
    eventually("the early subscriber joined", || p.subscribers() == 1);
    for n in 0..10 {
        publish(&mut p, n, 5000);
    }
    let late = spawn(ENTRY, "take", &[&name, "poll", "0", "1000"]);
    eventually("the late subscriber joined", || p.subscribers() == 2);
    let joined_at = p.next_index();
    for n in 10..40 {
        publish(&mut p, n, 5000);
    }
    // The early one left after 15 frames; the publisher went on without waiting for it.
    assert_eq!(indices(&finish(early, 0)), (0..15).collect::<Vec<_>>());
    drop(p);
    assert_eq!(indices(&finish(late, 0)), (joined_at..40).collect::<Vec<_>>());
}

#[test]
fn several_streams_in_one_process_and_descriptors_stay_flat() {
    let _serial = serial();
    let names = [unique("multi-a"), unique("multi-b")];
    let mut pubs: Vec<Publisher> =
        names.iter().map(|n| Publisher::create_host(n, image_options(Policy::Every, 2)).unwrap()).collect();
    let mut subs: Vec<Subscriber> =
        names.iter().map(|n| Subscriber::connect_host(n, SubscribeOptions::default()).unwrap()).collect();
    let mut baseline = 0;
    for round in 0..20u64 {
        for (p, s) in pubs.iter_mut().zip(subs.iter_mut()) {
            publish(p, round, 32 * 16 * 4);
            let f = s.next().unwrap().expect("a frame");
            assert_eq!(f.index(), round);
            assert_eq!(pattern::first_mismatch(&f.to_vec().unwrap(), round), None);
        }
        if round == 4 {
            baseline = open_fds();
        }
    }
    assert_eq!(open_fds(), baseline, "frames open no descriptors");
    // Joins and leaves open and close the same descriptors.
    for _ in 0..10 {
        let extra = Subscriber::connect_host(&names[0], SubscribeOptions::default()).unwrap();
        eventually("joined", || pubs[0].subscribers() == 2);
        drop(extra);
        eventually("left", || pubs[0].subscribers() == 1);
    }
    assert_eq!(open_fds(), baseline, "join and leave leak no descriptor");
    drop(pubs);
    for mut s in subs {
        assert!(s.next().unwrap().is_none(), "a clean end");
        assert!(s.ended());
    }
}

#[test]
fn names_are_checked_and_a_name_in_use_is_refused_with_its_owner() {
    let _serial = serial();
    init();
    for bad in ["", "a/b", "x y", "..", &"n".repeat(65)] {
        let e = Publisher::create_host(bad, image_options(Policy::Every, 2)).err().expect("refused").to_string();
        assert!(e.contains("stream name"), "{bad:?}: {e}");
        let e = Subscriber::connect_host(bad, SubscribeOptions::default()).err().expect("refused").to_string();
        assert!(e.contains("stream name"), "{bad:?}: {e}");
    }
    let name = unique("taken");
    let _p = Publisher::create_host(&name, image_options(Policy::Every, 2)).unwrap();
    let e = Publisher::create_host(&name, image_options(Policy::Every, 2)).err().expect("in use").to_string();
    assert!(e.contains("in use") && e.contains(&std::process::id().to_string()), "{e}");
    let e = Subscriber::connect_host(&unique("nobody"), SubscribeOptions::default()).err().expect("none");
    assert!(e.to_string().contains("no publisher"), "{e}");
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    let _serial = serial();
    init();
    let e = Publisher::create_host(&unique("o"), image_options(Policy::Every, 1)).err().unwrap().to_string();
    assert!(e.contains("2 to 64 slots"), "{e}");
    let e = Publisher::create_host(&unique("o"), image_options(Policy::Latest, 2)).err().unwrap().to_string();
    assert!(e.contains("at least 3"), "{e}");
    let desc = ImageDesc::new_2d(vk::Format::R16G16B16A16_SFLOAT, 8, 8, vk::ImageUsageFlags::TRANSFER_SRC);
    let e = Publisher::create_host(&unique("o"), StreamOptions::image(desc).memory(Memory::Host)).err().unwrap();
    assert!(e.to_string().contains("4-byte"), "{e}");
    let buffer = StreamOptions::buffer(BufferDesc::new(64, vk::BufferUsageFlags::TRANSFER_SRC));
    let e = Publisher::create_host(&unique("o"), buffer).err().unwrap().to_string();
    assert!(e.contains("host memory only"), "{e}");
    let mut p = Publisher::create_host(&unique("o"), image_options(Policy::Every, 2)).unwrap();
    let mut slot = p.acquire().unwrap();
    assert!(slot.set_metadata(&[0; 257]).unwrap_err().to_string().contains("256"));
    assert!(p.acquire().err().unwrap().to_string().contains("already acquired"));
    assert!(slot.write_host(&vec![0; 32 * 16 * 4 + 1]).is_err());
    drop(slot);
    let slot = p.acquire().expect("a dropped slot can be acquired again");
    p.publish(slot, extmem::Handoff::host()).unwrap();
}
