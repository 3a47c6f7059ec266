//! What a received descriptor is, compared with what this driver's own export is: its kind
//! ([`crate::gate::fdkind`]), and for a memfd its seals and size. A memfd checked once can be shrunk
//! by its sender afterwards, and then the importer's first access past the new end is a SIGBUS;
//! a memfd smaller than the memory it is said to hold faults the same way. So a received memfd
//! must carry the seals the driver's own export carries (lavapipe: `F_SEAL_SEAL |
//! F_SEAL_SHRINK | F_SEAL_GROW`) and hold the described size plus the driver's overhead (the
//! export's `fstat` size less its `allocationSize`). A dma-buf's `fstat` size is its size too.
//! Where the kernel cannot tell (NVIDIA's opaque fd is a character device), only the UUID,
//! handle-type and rules checks of the gate apply.

use crate::error::{Error, IoResultExt, Result};
use crate::gate::fdkind::{self, ExportProfile, FdKind};
use crate::handle::HandleType;
use rustix::fs::SealFlags;
use std::os::fd::BorrowedFd;

/// The seals a received memfd needs where the driver's own export is unknown (another API's
/// importer): without them its sender can always shrink it under the mapping.
pub const MIN_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// Refuses `fd` as `handle_type` memory said to hold `size` bytes, where this driver's opaque
/// export is `profile` (`None`: unknown, as for another API's import).
pub fn check_fd(handle_type: HandleType, fd: BorrowedFd<'_>, size: u64, profile: Option<&ExportProfile>) -> Result<()> {
    let kind = fdkind::classify(fd)?;
    let opaque = if handle_type == HandleType::OpaqueFd { profile.map(|p| p.kind) } else { None };
    fdkind::check_kind(handle_type, kind, opaque)?;
    let stat_size = || -> Result<u64> {
        Ok(rustix::fs::fstat(fd).io(|| "fstat of the received descriptor".into())?.st_size.max(0) as u64)
    };
    match kind {
        FdKind::MemFile => {
            let (seals, overhead, learned) = match (handle_type, profile) {
                (HandleType::OpaqueFd, Some(p)) => (p.seals.unwrap_or(MIN_SEALS), p.overhead, true),
                _ => (MIN_SEALS, 0, false),
            };
            let have = rustix::fs::fcntl_get_seals(fd).io(|| "F_GET_SEALS of the received memfd".into())?;
            check_seals(handle_type, have, seals, learned)?;
            check_size(handle_type, "memfd", stat_size()?, size, overhead)
        }
        FdKind::DmaBuf => check_size(handle_type, "dma-buf", stat_size()?, size, 0),
        _ => Ok(()),
    }
}

/// Refuses a memfd that lacks any of `want`, the seals of this driver's own export where
/// `learned` (a pure rule, tested apart).
pub fn check_seals(handle_type: HandleType, have: SealFlags, want: SealFlags, learned: bool) -> Result<()> {
    if have.contains(want) {
        return Ok(());
    }
    Err(Error::Import(format!(
        "the {handle_type} memfd is not sealed with {} (it has {}){}: its sender could shrink it under the \
         mapping (a SIGBUS here); seal it with F_ADD_SEALS",
        seal_names(want),
        seal_names(have),
        if learned { ", as this driver's own export is" } else { "" }
    )))
}

/// Refuses a file of `have` bytes said to hold `size` bytes that need `overhead` more.
pub fn check_size(handle_type: HandleType, what: &str, have: u64, size: u64, overhead: u64) -> Result<()> {
    let need = size.saturating_add(overhead);
    if have >= need {
        return Ok(());
    }
    if overhead == 0 {
        return Err(Error::Import(format!(
            "the {handle_type} {what} holds {have} bytes; the descriptor says {size} bytes: it would fault past its end"
        )));
    }
    Err(Error::Import(format!(
        "the {handle_type} {what} holds {have} bytes; the descriptor says {size} bytes, which take {need} bytes \
         in a file of this driver ({overhead} bytes of overhead): it would fault past its end"
    )))
}

fn seal_names(s: SealFlags) -> String {
    let names = [
        (SealFlags::SEAL, "F_SEAL_SEAL"),
        (SealFlags::SHRINK, "F_SEAL_SHRINK"),
        (SealFlags::GROW, "F_SEAL_GROW"),
        (SealFlags::WRITE, "F_SEAL_WRITE"),
        (SealFlags::FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"),
    ];
    let v: Vec<&str> = names.iter().filter(|(f, _)| s.contains(*f)).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "no seal".into()
    } else {
        v.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_sizes_are_named() {
        let h = HandleType::OpaqueFd;
        let e = check_seals(h, SealFlags::SHRINK, MIN_SEALS, true).unwrap_err().to_string();
        assert!(e.contains("F_SEAL_GROW") && e.contains("it has F_SEAL_SHRINK"), "{e}");
        check_seals(h, SealFlags::SEAL | MIN_SEALS, MIN_SEALS, false).unwrap();
        let e = check_size(h, "memfd", 8192, 1 << 30, 4136).unwrap_err().to_string();
        assert!(e.contains("holds 8192 bytes") && e.contains("1073741824"), "{e}");
        check_size(h, "memfd", 69672, 65536, 4136).unwrap();
        assert!(check_size(h, "memfd", u64::MAX, u64::MAX, 4136).is_ok());
    }
}
