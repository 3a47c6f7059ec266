//! Stream names and where they live: `[A-Za-z0-9._-]{1,64}`, a socket
//! `stream.NAME.sock` in the private socket folder ([`crate::transport::socket::socket_dir`]),
//! and beside it a lock file `stream.NAME.lock` that the publisher holds (`flock`) and that
//! names its pid, so that a second publisher is refused with the owner's pid and a crashed
//! one's leftovers are recognised as such (the kernel drops the lock with the process).

use crate::error::{Error, IoResultExt, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The longest stream name.
pub const MAX_NAME: usize = 64;

/// Checks a stream name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, and not `.` or `..`.
pub fn check_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "stream name of {} bytes: a name has 1 to {MAX_NAME} characters of [A-Za-z0-9._-]",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|&c| !ok_char(c)) {
        return Err(Error::Invalid(format!(
            "stream name {:?} contains {c:?}: a name has 1 to {MAX_NAME} characters of [A-Za-z0-9._-]",
            name
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::Invalid(format!("stream name {name:?} is not a name")));
    }
    Ok(())
}

/// The socket of stream `name` (checked).
pub fn socket_path(name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(crate::transport::socket::socket_dir().join(format!("stream.{name}.sock")))
}

fn lock_path(name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(crate::transport::socket::socket_dir().join(format!("stream.{name}.lock")))
}

/// The names of the streams whose publisher lives now (their lock is held).
pub fn live_streams() -> Vec<(String, Option<u32>)> {
    let dir = crate::transport::socket::socket_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<(String, Option<u32>)> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file.strip_prefix("stream.")?.strip_suffix(".lock")?.to_owned();
            check_name(&name).ok()?;
            let path = e.path();
            let fd = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) {
                Ok(()) => None, // nobody holds it: no live publisher
                Err(_) => Some((name, read_pid(&path))),
            }
        })
        .collect();
    out.sort();
    out
}

fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The publisher's claim on a name: the lock file, held (`flock`) while it lives.
#[derive(Debug)]
pub(crate) struct NameLock {
    _fd: OwnedFd,
}

impl NameLock {
    /// Takes the name, or says which process holds it.
    pub(crate) fn take(name: &str) -> Result<NameLock> {
        let path = lock_path(name)?;
        let dir = crate::transport::socket::socket_dir();
        crate::transport::private_dir::ensure(&dir)?;
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .io(|| format!("opening {}", path.display()))?;
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            let owner = read_pid(&path).map_or_else(|| "an unknown process".to_string(), |p| format!("process {p}"));
            return Err(Error::Invalid(format!(
                "stream name {name:?} is in use: {owner} publishes it (pick another name or stop that process)"
            )));
        }
        rustix::fs::ftruncate(&fd, 0).io(|| format!("truncating {}", path.display()))?;
        let pid = format!("{}\n", std::process::id());
        rustix::io::write(&fd, pid.as_bytes()).io(|| format!("writing {}", path.display()))?;
        // A socket left by a crashed publisher of this name is stale: this process holds the name.
        let _ = std::fs::remove_file(socket_path(name)?);
        Ok(NameLock { _fd: fd })
    }
}

// The lock file stays when the publisher goes (removing it would let a process that opened the
// old file and one that creates a new one both take "the" lock); the lock itself ends with the
// descriptor.

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "cam0", "left.rgb", "A-Z_09", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "a\0", &"x".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("stream name"), "{bad:?}: {e}");
        }
    }
}
