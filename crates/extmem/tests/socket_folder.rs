//! The socket folder: refused unless it is a real directory of this user with mode 0700, made
//! 0700 whatever the umask, and socket files that killed processes left are removed.

use extmem::transport::socket::Listener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("extmem-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir(&base).unwrap();
    base
}

fn bind_err(dir: &Path) -> String {
    match Listener::bind(&dir.join("x.sock")) {
        Ok(_) => panic!("{} was accepted as the socket folder", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_socket_folder_must_be_ours_private_and_real() {
    let base = scratch("folder-test");

    // A symbolic link to a folder of the right mode is still refused (it could point anywhere).
    let target = base.join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = base.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(bind_err(&link).contains("not a real directory"), "{}", bind_err(&link));

    // A file where the folder should be.
    let file = base.join("file");
    std::fs::write(&file, b"").unwrap();
    assert!(bind_err(&file).contains("not a real directory"), "{}", bind_err(&file));

    // A folder others can enter.
    let open = base.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(bind_err(&open).contains("mode is 755"), "{}", bind_err(&open));

    // A folder of another user (only root can make one here).
    let foreign = base.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    if std::os::unix::fs::chown(&foreign, Some(65534), None).is_ok() {
        assert!(bind_err(&foreign).contains("belongs to uid 65534"), "{}", bind_err(&foreign));
    } else {
        println!("not root: the foreign-owner case needs chown (covered where the tests run as root)");
    }

    // A missing folder is made 0700 even under a umask that takes the owner's bits away.
    let fresh = base.join("fresh");
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o277));
    let made = Listener::bind(&fresh.join("x.sock"));
    rustix::process::umask(old);
    let listener = made.unwrap();
    let meta = std::fs::metadata(&fresh).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(listener.path()).unwrap().mode() & 0o777, 0o600);
    drop(listener);
    std::fs::remove_dir_all(&base).unwrap();
}

/// A socket file with nobody listening, as a killed process leaves it.
fn leave_socket(path: &Path) {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None).unwrap();
    rustix::net::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
}

#[test]
fn sockets_that_killed_processes_left_are_removed_and_live_ones_kept() {
    let base = scratch("stale-test");
    let dir = base.join("sockets");
    let first = Listener::bind(&dir.join("first.sock")).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.join(format!("peer-{dead}-1.sock"));
    leave_socket(&stale);
    // Ours: this process is alive, so the file stays even though nobody listens on it.
    let ours = dir.join(format!("peer-{}-2.sock", std::process::id()));
    leave_socket(&ours);
    let second = Listener::bind(&dir.join("second.sock")).unwrap();
    assert!(!stale.exists(), "the stale socket of dead process {dead} is still there");
    assert!(ours.exists(), "a socket of a live process was removed");
    assert!(first.path().exists(), "a live listener's socket was removed");
    drop((first, second));
    std::fs::remove_dir_all(&base).unwrap();
}
