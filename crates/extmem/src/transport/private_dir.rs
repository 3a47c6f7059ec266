//! The folder sockets live in: ours, mode 0700, a real directory (not a symbolic link), made
//! without a race; and socket files that a killed process left there.
//!
//! Under `/tmp` another user can create `extmem-<uid>` first, or put a symbolic link there, and
//! so choose where the socket lands or delete it. The folder is therefore made with `mkdir`
//! (which never follows a link), then opened with `O_NOFOLLOW | O_DIRECTORY` and checked
//! through that descriptor: owner, mode and type.

use crate::error::{Error, IoResultExt, Result};
use rustix::fs::{Mode, OFlags};
use std::path::Path;

/// Makes `dir` (mode 0700) unless it exists, then refuses it unless it is a real directory
/// owned by this user with mode 0700.
pub fn ensure(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        std::fs::create_dir_all(parent).io(|| format!("creating {}", parent.display()))?;
    }
    let created = match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(rustix::io::Errno::EXIST) => false,
        Err(e) => return Err(e).io(|| format!("creating {}", dir.display())),
    };
    let fd =
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| refuse(dir, &format!("it is not a real directory ({e}; a symbolic link or a file?)")))?;
    if created {
        // The umask may have taken bits away; set exactly 0700 through the descriptor.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).io(|| format!("chmod 0700 {}", dir.display()))?;
    }
    let stat = rustix::fs::fstat(&fd).io(|| format!("fstat {}", dir.display()))?;
    let me = rustix::process::getuid().as_raw();
    if stat.st_uid != me {
        return Err(refuse(dir, &format!("it belongs to uid {}, not to this user (uid {me})", stat.st_uid)));
    }
    if stat.st_mode & 0o777 != 0o700 {
        return Err(refuse(
            dir,
            &format!("its mode is {:o}, not 700 (chmod 700 it if it is yours)", stat.st_mode & 0o777),
        ));
    }
    Ok(())
}

fn refuse(dir: &Path, why: &str) -> Error {
    Error::Io {
        context: format!("refusing the socket folder {}", dir.display()),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_string()),
    }
}

/// Removes the socket files in `dir` (a folder [`ensure`] accepted) that a killed process
/// left: named `<name>-<pid>-<n>.sock` (as `extmem` names them), their process gone, and
/// `connect` refused. A live listener is never connected to. Returns how many were removed.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| owner_pid(&e.file_name().to_string_lossy()).is_some_and(|pid| !alive(pid)))
        .filter(|e| remove_if_refused(&e.path()))
        .count()
}

/// The pid in a name like `peer-1234-5678.sock`.
fn owner_pid(name: &str) -> Option<i32> {
    let stem = name.strip_suffix(".sock")?;
    let mut parts = stem.split('-');
    let (_, pid, n) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || n.parse::<u64>().is_err() {
        return None;
    }
    pid.parse().ok().filter(|&p: &i32| p > 0)
}

fn alive(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else { return false };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// Removes `path` if it is a socket whose `connect` is refused (nobody listens).
fn remove_if_refused(path: &Path) -> bool {
    let Ok(stat) = rustix::fs::lstat(path) else { return false };
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return false;
    }
    let Ok(fd) = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    ) else {
        return false;
    };
    let Ok(addr) = rustix::net::SocketAddrUnix::new(path) else { return false };
    match rustix::net::connect(&fd, &addr) {
        Err(rustix::io::Errno::CONNREFUSED) => std::fs::remove_file(path).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn only_extmem_socket_names_have_an_owner() {
        assert_eq!(owner_pid("peer-1234-99.sock"), Some(1234));
        for other in ["peer-1234.sock", "peer-x-1.sock", "peer-0-1.sock", "a-1-2-3.sock", "peer-1-2.txt", "notes"] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }
}
