//! Faults between the processes of a stream: a subscriber that dies holding frames, one that
//! holds too long, a publisher that dies (an error, not a clean end), a clean end, and a
//! subscriber that reconnects to the publisher's successor.

mod stream_support;

use extmem::stream::{Memory, Policy, Publisher, StreamOptions, SubscribeOptions, Subscriber};
use extmem::{pattern, vk, BufferDesc, Handoff};
use std::io::BufRead;
use std::time::{Duration, Instant};
use stream_support::*;

const ENTRY: &str = "child";
const LEN: usize = 4096;
const LONG: Duration = Duration::from_secs(600);

fn options(slots: u32) -> StreamOptions {
    StreamOptions::buffer(BufferDesc::new(LEN as u64, vk::BufferUsageFlags::TRANSFER_SRC))
        .memory(Memory::Host)
        .slots(slots)
        .policy(Policy::Every)
}

fn publish(p: &mut Publisher, n: u64) {
    let mut slot = p.acquire().unwrap();
    slot.write_host(&frame_bytes(LEN, n)).unwrap();
    p.publish(slot, Handoff::host()).unwrap();
}

/// Child roles: `publish NAME COUNT clean|crash` waits for one subscriber, publishes COUNT
/// frames, then ends the stream or kills itself; `hold NAME` takes one frame, says `HELD`
/// and sleeps.
#[test]
fn child() {
    let Some((role, args)) = role() else { return };
    match role.as_str() {
        "publish" => {
            let mut p = Publisher::create_host(&args[0], options(4)).unwrap();
            eventually("a subscriber joined", || p.subscribers() >= 1);
            let count: u64 = args[1].parse().unwrap();
            for n in 0..count {
                publish(&mut p, n);
            }
            if args[2] == "crash" {
                // Let the subscriber take the frames, then die without ending the stream.
                std::thread::sleep(Duration::from_millis(200));
                // SAFETY: kills this process.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            drop(p);
        }
        "hold" => {
            let mut s = Subscriber::connect_host(&args[0], SubscribeOptions::default().timeout(LONG)).unwrap();
            let f = s.next().unwrap().expect("a frame");
            println!("HELD {}", f.index());
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            std::thread::sleep(LONG);
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// What the child printed from `prefix` to the end of that line (the test harness prints too).
fn read_line(child: &mut std::process::Child, prefix: &str) -> String {
    let mut reader = std::io::BufReader::new(child.stdout.as_mut().unwrap());
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the child ended before printing {prefix}");
        // The harness prints "test child ... " before the child's own output.
        if let Some(at) = line.find(prefix) {
            return line[at..].to_owned();
        }
    }
}

#[test]
fn a_subscriber_that_dies_holding_a_frame_has_its_slots_back() {
    let name = unique("subdeath");
    let mut p = Publisher::create_host(&name, options(2).hold_timeout(LONG).acquire_timeout(LONG)).unwrap();
    let mut child = spawn(ENTRY, "hold", &[&name]);
    eventually("the subscriber joined", || p.subscribers() == 1);
    publish(&mut p, 0);
    publish(&mut p, 1);
    assert_eq!(read_line(&mut child, "HELD").trim(), "HELD 0");
    child.kill().unwrap();
    let killed = Instant::now();
    // Frame 2 goes into frame 0's slot: only possible once the dead holder is forgotten.
    let slot = p.acquire().unwrap();
    println!("slot free {:?} after the subscriber was killed", killed.elapsed());
    assert_eq!(slot.index(), 2);
    assert_eq!(p.subscribers(), 0);
    p.publish(slot, Handoff::host()).unwrap();
    child.wait().unwrap();
}

#[test]
fn a_holder_past_the_hold_timeout_is_dropped_with_the_reason() {
    let name = unique("holdtimeout");
    let mut p = Publisher::create_host(&name, options(2).hold_timeout(Duration::from_millis(300))).unwrap();
    let mut s = Subscriber::connect_host(&name, SubscribeOptions::default()).unwrap();
    publish(&mut p, 0);
    publish(&mut p, 1);
    let held = s.next().unwrap().unwrap();
    assert_eq!(held.index(), 0);
    publish(&mut p, 2); // waits 300 ms for frame 0, then drops its holder
    assert_eq!(p.subscribers(), 0);
    let e = loop {
        match s.next() {
            Ok(Some(_)) => continue, // frame 1 was still in the ring
            Ok(None) => panic!("a dropped subscriber sees an error, not an end"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(e.contains("dropped") && e.contains("held frame 0"), "{e}");
}

#[test]
fn a_publisher_waiting_on_a_holder_times_out_naming_its_pid() {
    let name = unique("acquiretimeout");
    let o = options(2).hold_timeout(LONG).acquire_timeout(Duration::from_millis(200));
    let mut p = Publisher::create_host(&name, o).unwrap();
    let mut s = Subscriber::connect_host(&name, SubscribeOptions::default()).unwrap();
    publish(&mut p, 0);
    publish(&mut p, 1);
    let _held = s.next().unwrap().unwrap();
    let e = p.acquire().err().expect("no free slot").to_string();
    assert!(e.contains(&format!("pid {}", std::process::id())) && e.contains("frame 0"), "{e}");
}

fn subscriber(name: &str, reconnect: bool) -> Subscriber {
    let o = SubscribeOptions::default().timeout(Duration::from_secs(60)).reconnect(reconnect);
    Subscriber::connect_host(name, o).unwrap()
}

fn take(s: &mut Subscriber, count: u64) {
    for n in 0..count {
        let f = s.next().unwrap().expect("a frame");
        assert_eq!(f.index(), n);
        assert_eq!(pattern::first_mismatch(&f.to_vec().unwrap(), n), None);
    }
}

#[test]
fn a_publisher_that_dies_ends_its_subscribers_with_an_error() {
    let name = unique("pubdeath");
    let child = spawn(ENTRY, "publish", &[&name, "3", "crash"]);
    let mut s = subscriber(&name, false);
    take(&mut s, 3);
    let e = s.next().expect_err("an error, not a clean end").to_string();
    assert!(e.contains("died") && e.contains(&child.id().to_string()), "{e}");
    finish_killed(child);
}

#[test]
fn a_publisher_that_ends_cleanly_ends_the_iteration() {
    let name = unique("cleanend");
    let child = spawn(ENTRY, "publish", &[&name, "3", "clean"]);
    let mut s = subscriber(&name, false);
    take(&mut s, 3);
    assert!(s.next().unwrap().is_none());
    finish(child, 0);
}

#[test]
fn a_subscriber_that_asked_to_reconnect_finds_the_restarted_publisher() {
    let name = unique("reconnect");
    let first = spawn(ENTRY, "publish", &[&name, "3", "crash"]);
    let mut s = subscriber(&name, true);
    let first_pid = s.publisher_pid();
    take(&mut s, 3);
    let n = name.clone();
    let second = std::thread::spawn(move || {
        finish_killed(first);
        finish(spawn(ENTRY, "publish", &[&n, "5", "clean"]), 0)
    });
    // The second publisher's life numbers its frames from 0 again.
    take(&mut s, 5);
    assert_ne!(s.publisher_pid(), first_pid);
    assert!(s.next().unwrap().is_none());
    second.join().unwrap();
}

fn finish_killed(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the publisher killed itself");
}
