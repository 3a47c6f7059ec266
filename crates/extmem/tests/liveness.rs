//! A peer process that exits is noticed through its pidfd, not at the timeout: before it
//! connects (`Listener::accept_watching`) and while this side waits for its next message
//! (`Channel::watch`), even when the socket stays open (here: this process holds the other end).

use extmem::transport::liveness::ProcessWatch;
use extmem::transport::socket::Listener;
use extmem::transport::Channel;
use std::time::{Duration, Instant};

/// Far below the timeouts used (600 s), far above any scheduling delay: noticing the exit is
/// what is tested, not its speed.
const BOUND: Duration = Duration::from_secs(60);

fn short_lived_child() -> std::process::Child {
    std::process::Command::new("sh").args(["-c", "exit 3"]).spawn().expect("sh")
}

#[test]
fn a_peer_that_exits_before_connecting_ends_the_accept() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: before this test binary's other threads read the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let path = extmem::transport::socket::socket_dir().join(format!("liveness-{}-1.sock", std::process::id()));
    let listener = Listener::bind(&path).unwrap();
    let child = short_lived_child();
    let watch = ProcessWatch::new(child.id()).unwrap();
    let t = Instant::now();
    let e = listener.accept_watching(Duration::from_secs(600), Some(&watch)).err().expect("nobody connected");
    assert!(t.elapsed() < BOUND, "noticed only after {:?}", t.elapsed());
    assert!(e.to_string().contains("exited"), "{e}");
    assert!(watch.exited());
    // Reap the zombie.
    let mut child = child;
    child.wait().unwrap();
}

#[test]
fn a_peer_that_exits_while_its_socket_stays_open_ends_the_wait() {
    let (mut mine, theirs) = Channel::pair().unwrap();
    mine.set_timeout(Duration::from_secs(600));
    let mut child = short_lived_child();
    mine.watch(ProcessWatch::new(child.id()).unwrap());
    let t = Instant::now();
    let e = mine.recv().expect_err("nothing was sent");
    assert!(t.elapsed() < BOUND, "noticed only after {:?}", t.elapsed());
    assert!(e.to_string().contains("exited"), "{e}");
    drop(theirs);
    child.wait().unwrap();
}

#[test]
fn a_process_id_that_is_not_one_is_an_error_not_a_panic() {
    assert!(ProcessWatch::new(0).is_err());
    assert!(ProcessWatch::new(u32::MAX).is_err());
}
