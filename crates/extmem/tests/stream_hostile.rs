//! Hostile peers of a stream: a publisher that forges its ring (slots and frame numbers out of
//! range, ready values outside (last, last + 2 x slots], metadata lengths over 256, a slot left
//! mid-write, a head that goes back), a fake publisher whose ring is unsealed or not a memfd,
//! and subscribers that forge their own ring (unsealed, holding every slot, releasing frames
//! they never took) or flood the socket. Each is refused with the reason; nobody crashes or
//! hangs, and refused joins leave no descriptor open.

mod stream_support;

use extmem::stream::{Memory, Policy, Publisher, StreamOptions, SubscribeOptions, Subscriber};
use extmem::transport::{Channel, Listener, Message};
use extmem::{vk, BufferDesc, Handoff};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stream_support::*;

const LEN: usize = 4096;

fn options(policy: Policy, slots: u32) -> StreamOptions {
    StreamOptions::buffer(BufferDesc::new(LEN as u64, vk::BufferUsageFlags::TRANSFER_SRC))
        .memory(Memory::Host)
        .slots(slots)
        .policy(policy)
        .acquire_timeout(Duration::from_secs(20))
}

fn publish(p: &mut Publisher) {
    let slot = p.acquire().unwrap();
    p.publish(slot, Handoff::host()).unwrap();
}

fn subscriber(name: &str) -> Subscriber {
    Subscriber::connect_host(name, SubscribeOptions::default().timeout(Duration::from_secs(20))).unwrap()
}

/// `next` fails with a protocol error naming `what`.
fn refuses(s: &mut Subscriber, what: &str) {
    let e = s.next().expect_err("a forged ring is refused");
    let e = e.to_string();
    assert!(e.contains(what) && e.contains("refused"), "expected {what:?}: {e}");
}

#[test]
fn forged_publisher_rings_are_refused_with_the_field_named() {
    let _serial = serial();
    type Forgery<'a> = (&'a str, &'a dyn Fn(&Publisher));
    let cases: [Forgery; 5] = [
        ("names slot 9 of 3", &|p| p.forge().head(0, 9)),
        ("holds frame 7", &|p| {
            p.forge().entry(0, 7, 8, 0);
            p.forge().head(0, 0)
        }),
        ("ready value 1000", &|p| {
            p.forge().entry(0, 0, 1000, 0);
            p.forge().head(0, 0)
        }),
        ("bytes of metadata", &|p| {
            p.forge().entry(0, 0, 1, 1000);
            p.forge().head(0, 0)
        }),
        ("overrun", &|p| p.forge().head(3, 0)),
    ];
    for (what, forge) in cases {
        let name = unique("forged");
        let p = Publisher::create_host(&name, options(Policy::Every, 3)).unwrap();
        let mut s = subscriber(&name);
        forge(&p);
        refuses(&mut s, what);
    }
}

#[test]
fn a_slot_left_mid_write_and_a_head_that_goes_back_are_refused() {
    let _serial = serial();
    let name = unique("stuck");
    let p = Publisher::create_host(&name, options(Policy::Every, 3)).unwrap();
    let mut s = subscriber(&name);
    p.forge().stuck(0);
    p.forge().head(0, 0);
    refuses(&mut s, "mid-write");

    let name = unique("back");
    let mut p = Publisher::create_host(&name, options(Policy::Latest, 4)).unwrap();
    let mut s = subscriber(&name);
    for _ in 0..3 {
        publish(&mut p);
    }
    assert_eq!(s.next().unwrap().unwrap().index(), 2);
    p.forge().head(1, 1);
    refuses(&mut s, "went back");
}

/// A fake publisher on `name`'s socket that sends `fd` as its ring.
fn fake_publisher(name: &str, fd: OwnedFd, len: u64) -> std::thread::JoinHandle<()> {
    let listener = Listener::bind(&extmem::stream::name::socket_path(name).unwrap()).unwrap();
    std::thread::spawn(move || {
        let channel = listener.accept(Duration::from_secs(20)).unwrap();
        channel.send(&Message::HostBytes { len }, &[fd.as_fd()]).unwrap();
        drop(fd);
        // Wait for the subscriber to hang up.
        let _ = channel.recv();
    })
}

fn memfd(len: u64, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create("fake", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    fd
}

#[test]
fn a_ring_that_is_unsealed_or_not_a_memfd_is_refused_and_nothing_leaks() {
    let _serial = serial();
    init();
    let before = open_fds();
    let all = SealFlags::SHRINK | SealFlags::GROW | SealFlags::FUTURE_WRITE | SealFlags::SEAL;
    let (r, w) = rustix::pipe::pipe().unwrap();
    drop(w);
    let cases: Vec<(OwnedFd, &str)> = vec![
        (memfd(4096, SealFlags::empty()), "not sealed"),
        (memfd(4096, SealFlags::SHRINK | SealFlags::GROW), "not sealed"),
        (r, "pipe"),
        (memfd(8192, all), "holds 8192 bytes"),
        (memfd(4096, all), "wrong magic"),
    ];
    for (fd, what) in cases {
        let name = unique("fakepub");
        let server = fake_publisher(&name, fd, 4096);
        let e = subscriber_err(&name);
        assert!(e.contains(what), "expected {what:?}: {e}");
        server.join().unwrap();
    }
    assert_eq!(open_fds(), before, "refused rings leave no descriptor open");
}

fn subscriber_err(name: &str) -> String {
    Subscriber::connect_host(name, SubscribeOptions::default().timeout(Duration::from_secs(20)))
        .err()
        .expect("refused")
        .to_string()
}

/// A subscriber speaking the join by hand, with a ring it made itself.
struct FakeSubscriber {
    channel: Channel,
    ring: *mut u8,
    publisher_ring: *const u8,
}

impl FakeSubscriber {
    fn hold(&self, slot: u32) -> &AtomicU64 {
        // SAFETY: the mapping holds 4096 bytes (64 + 16 x slots for the few slots used here).
        unsafe { &*self.ring.add(64 + 16 * slot as usize).cast::<AtomicU64>() }
    }
    fn release(&self, slot: u32) -> &AtomicU64 {
        // SAFETY: as above.
        unsafe { &*self.ring.add(72 + 16 * slot as usize).cast::<AtomicU64>() }
    }
    fn frame_in(&self, slot: u32) -> u64 {
        // SAFETY: the publisher's ring: entry `slot` at 128 + 320 x slot, its frame at +8.
        unsafe { (*self.publisher_ring.add(128 + 320 * slot as usize + 8).cast::<AtomicU64>()).load(Ordering::Acquire) }
    }
}

/// Joins `name` (a stream of `slots` slots) with a hand-made ring sealed with `seals`; the
/// publisher's refusal otherwise.
fn fake_subscriber(name: &str, slots: u32, seals: SealFlags) -> Result<FakeSubscriber, String> {
    let channel = Channel::connect(&extmem::stream::name::socket_path(name).unwrap()).unwrap();
    let (Message::HostBytes { len }, mut fds) = channel.recv().unwrap() else { panic!("the ring first") };
    let pub_fd = fds.pop().unwrap();
    // SAFETY: a read-only shared mapping of the publisher's ring, kept for the test.
    let publisher_ring =
        unsafe { rustix::mm::mmap(std::ptr::null_mut(), len as usize, ProtFlags::READ, MapFlags::SHARED, &pub_fd, 0) }
            .unwrap() as *const u8;
    for _ in 0..slots {
        let (m, _) = channel.recv().unwrap();
        assert!(matches!(m, Message::Share(_)));
    }
    let fd = rustix::fs::memfd_create("fake-sub", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, 4096).unwrap();
    // SAFETY: a read-write shared mapping of the memfd just made, kept for the test.
    let ring = unsafe {
        rustix::mm::mmap(std::ptr::null_mut(), 4096, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
    }
    .unwrap() as *mut u8;
    // SAFETY: the header fields of the subscriber ring, inside the mapping.
    unsafe {
        ring.cast::<u64>().write(u64::from_le_bytes(*b"EXTMSUBR"));
        ring.add(8).cast::<u32>().write(1);
        ring.add(12).cast::<u32>().write(slots);
    }
    rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    channel.send(&Message::HostBytes { len: 4096 }, &[fd.as_fd()]).unwrap();
    match channel.recv().unwrap() {
        (Message::FrameReady { .. }, _) => Ok(FakeSubscriber { channel, ring, publisher_ring }),
        (Message::Verdict { ok: false, detail }, _) => Err(detail),
        (other, _) => panic!("unexpected {other:?}"),
    }
}

fn dropped_reason(f: &FakeSubscriber) -> String {
    match f.channel.recv().unwrap() {
        (Message::Verdict { ok: false, detail }, _) => detail,
        (other, _) => panic!("expected the reason, got {other:?}"),
    }
}

#[test]
fn hostile_subscribers_are_refused_or_dropped_and_the_publisher_goes_on() {
    let _serial = serial();
    let all = SealFlags::SHRINK | SealFlags::GROW | SealFlags::FUTURE_WRITE | SealFlags::SEAL;
    // An unsealed ring is refused at the join.
    let name = unique("subunsealed");
    let p = Publisher::create_host(&name, options(Policy::Every, 3)).unwrap();
    let e = fake_subscriber(&name, 3, SealFlags::SHRINK | SealFlags::GROW).err().expect("refused");
    assert!(e.contains("not sealed"), "{e}");
    assert_eq!(p.subscribers(), 0);

    // Holding every slot of a latest stream: dropped, the publisher never waits.
    let name = unique("greedy");
    let mut p = Publisher::create_host(&name, options(Policy::Latest, 4)).unwrap();
    let greedy = fake_subscriber(&name, 4, all).unwrap();
    for _ in 0..4 {
        publish(&mut p);
    }
    for s in 0..4 {
        greedy.hold(s).store(greedy.frame_in(s) + 1, Ordering::SeqCst);
    }
    publish(&mut p);
    assert_eq!(p.subscribers(), 0);
    assert!(dropped_reason(&greedy).contains("held 4 slots"));

    // Releasing what it never took (every): only itself affected; the publisher goes on.
    let name = unique("liar");
    let mut p = Publisher::create_host(&name, options(Policy::Every, 3)).unwrap();
    let liar = fake_subscriber(&name, 3, all).unwrap();
    for s in 0..3 {
        liar.release(s).store(u64::MAX, Ordering::SeqCst);
    }
    for _ in 0..20 {
        publish(&mut p);
    }
    assert_eq!(p.subscribers(), 1);

    // Flooding the socket after the join: dropped.
    for _ in 0..100 {
        if liar.channel.send(&Message::FrameDone { frame: 1 }, &[]).is_err() {
            break;
        }
    }
    eventually("the flooding subscriber was dropped", || p.subscribers() == 0);
    publish(&mut p);
}
