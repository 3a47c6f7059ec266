//! Status codes, the thread-local last error, and the guard every entry point runs in.

use extmem_rs::Error;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call did. `EXTMEM_OK` is 0; other outcomes that are not failures are positive;
/// errors are negative. The values are fixed: new ones are only ever added.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum extmem_status {
    /// Done.
    EXTMEM_OK = 0,
    /// Nothing arrived within the timeout given (reserved for stream waits).
    EXTMEM_TIMEOUT = 1,
    /// The other side ended cleanly: it said `Bye` (or, for streams, the publisher closed).
    EXTMEM_END_OF_STREAM = 2,
    /// An argument is wrong: a null pointer where one is required, a `struct_size` too small,
    /// a value out of range (the message names it).
    EXTMEM_ERROR_INVALID_ARGUMENT = -1,
    /// A handle is null, already destroyed, or of another kind.
    EXTMEM_ERROR_INVALID_HANDLE = -2,
    /// A call out of order or in the wrong state for the object.
    EXTMEM_ERROR_MISUSE = -3,
    /// The device, driver or build cannot do what was asked.
    EXTMEM_ERROR_UNSUPPORTED = -4,
    /// A Vulkan command failed (the message names it and its `VkResult`).
    EXTMEM_ERROR_VULKAN = -5,
    /// The Vulkan loader could not be loaded (contexts extmem creates itself only).
    EXTMEM_ERROR_LOADER = -6,
    /// No usable Vulkan device.
    EXTMEM_ERROR_NO_DEVICE = -7,
    /// The extmem layer could not be found or enabled.
    EXTMEM_ERROR_LAYER = -8,
    /// A description breaks a Vulkan valid-usage rule or the device's limits.
    EXTMEM_ERROR_INVALID_DESCRIPTION = -9,
    /// An import was refused before the driver was asked: it could not have worked (another
    /// device, a file that is not memory, an allocation too small...).
    EXTMEM_ERROR_IMPORT_REFUSED = -10,
    /// A message from the peer was malformed or out of place; its descriptors were closed.
    EXTMEM_ERROR_PROTOCOL = -11,
    /// A pool refused a handle or a hand-off.
    EXTMEM_ERROR_POOL = -12,
    /// The peer closed the connection, died, or sent nothing within the channel's timeout.
    EXTMEM_ERROR_PEER = -13,
    /// The peer refused what was sent (its `Verdict` reason is in the message).
    EXTMEM_ERROR_PEER_REFUSED = -14,
    /// A socket or file operation failed.
    EXTMEM_ERROR_IO = -15,
    /// The publisher of a stream died without closing it (reserved for streams; distinct from
    /// the clean `EXTMEM_END_OF_STREAM`).
    EXTMEM_ERROR_PUBLISHER_CRASHED = -16,
    /// A bug in extmem, caught at the boundary (a panic); the object may be unusable.
    EXTMEM_ERROR_INTERNAL = -17,
}

use extmem_status::*;

/// A failed call: its status and what to tell the caller.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: extmem_status,
    pub(crate) message: String,
}

/// The result of an entry point's body.
pub(crate) type CResult<T> = Result<T, Failure>;

impl Failure {
    pub(crate) fn new(status: extmem_status, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }
    /// A bad argument, named.
    pub(crate) fn arg(message: impl Into<String>) -> Failure {
        Failure::new(EXTMEM_ERROR_INVALID_ARGUMENT, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let status = match &e {
            Error::Vulkan { .. } => EXTMEM_ERROR_VULKAN,
            Error::Loader(_) => EXTMEM_ERROR_LOADER,
            Error::NoDevice(_) => EXTMEM_ERROR_NO_DEVICE,
            Error::Unsupported(_) => EXTMEM_ERROR_UNSUPPORTED,
            Error::Layer(_) => EXTMEM_ERROR_LAYER,
            Error::Invalid(_) => EXTMEM_ERROR_INVALID_DESCRIPTION,
            Error::Import(_) => EXTMEM_ERROR_IMPORT_REFUSED,
            Error::Protocol(_) => EXTMEM_ERROR_PROTOCOL,
            Error::Pool(_) => EXTMEM_ERROR_POOL,
            Error::Peer(_) => EXTMEM_ERROR_PEER,
            Error::Io { .. } => EXTMEM_ERROR_IO,
            _ => EXTMEM_ERROR_INTERNAL,
        };
        Failure { status, message: e.to_string() }
    }
}

thread_local! {
    /// The last error of this thread: replaced (so the previous text freed) only by the
    /// thread's next call.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(text: &str) {
    // A NUL inside the text (from a peer's Verdict, say) would cut it: show it escaped.
    let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs the body of entry point `name`: records its error (or clears the last one), turns a
/// panic into `EXTMEM_ERROR_INTERNAL`, and returns the status.
pub(crate) fn guard(name: &str, body: impl FnOnce() -> CResult<extmem_status>) -> extmem_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => {
            set_last_error("");
            status
        }
        Ok(Err(f)) => {
            set_last_error(&format!("{name}: {}", f.message));
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            set_last_error(&format!("{name}: internal error (please report it): {what}"));
            EXTMEM_ERROR_INTERNAL
        }
    }
}

/// [`guard`] for functions that return a value instead of a status (getters, destroy
/// functions): `fallback` when the body fails or panics, the error recorded.
pub(crate) fn guard_value<T>(name: &str, fallback: T, body: impl FnOnce() -> CResult<T>) -> T {
    let mut out = None;
    guard(name, || {
        out = Some(body()?);
        Ok(EXTMEM_OK)
    });
    out.unwrap_or(fallback)
}

/// The text of this thread's last failed call, or "" when its last call succeeded. Never
/// NULL. Valid until the thread's next call into extmem (this function excepted): copy it to
/// keep it.
#[no_mangle]
pub extern "C" fn extmem_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().as_ptr())).unwrap_or(c"internal error".as_ptr())
}

/// The status's name (`"EXTMEM_OK"`, ...), a static string; `"EXTMEM_STATUS_UNKNOWN"` for a
/// value this library does not define.
#[no_mangle]
pub extern "C" fn extmem_status_name(status: i32) -> *const c_char {
    let name: &'static std::ffi::CStr = match status {
        0 => c"EXTMEM_OK",
        1 => c"EXTMEM_TIMEOUT",
        2 => c"EXTMEM_END_OF_STREAM",
        -1 => c"EXTMEM_ERROR_INVALID_ARGUMENT",
        -2 => c"EXTMEM_ERROR_INVALID_HANDLE",
        -3 => c"EXTMEM_ERROR_MISUSE",
        -4 => c"EXTMEM_ERROR_UNSUPPORTED",
        -5 => c"EXTMEM_ERROR_VULKAN",
        -6 => c"EXTMEM_ERROR_LOADER",
        -7 => c"EXTMEM_ERROR_NO_DEVICE",
        -8 => c"EXTMEM_ERROR_LAYER",
        -9 => c"EXTMEM_ERROR_INVALID_DESCRIPTION",
        -10 => c"EXTMEM_ERROR_IMPORT_REFUSED",
        -11 => c"EXTMEM_ERROR_PROTOCOL",
        -12 => c"EXTMEM_ERROR_POOL",
        -13 => c"EXTMEM_ERROR_PEER",
        -14 => c"EXTMEM_ERROR_PEER_REFUSED",
        -15 => c"EXTMEM_ERROR_IO",
        -16 => c"EXTMEM_ERROR_PUBLISHER_CRASHED",
        -17 => c"EXTMEM_ERROR_INTERNAL",
        _ => c"EXTMEM_STATUS_UNKNOWN",
    };
    name.as_ptr()
}

/// The ABI version this library implements: `EXTMEM_ABI_VERSION_MAJOR << 16 | minor`.
#[no_mangle]
pub extern "C" fn extmem_abi_version() -> u32 {
    EXTMEM_ABI_VERSION_MAJOR << 16 | EXTMEM_ABI_VERSION_MINOR
}

/// The ABI's major version: the `0` of the SONAME `libextmem.so.0`.
pub const EXTMEM_ABI_VERSION_MAJOR: u32 = 0;
/// The ABI's minor version: grows when functions or struct fields are added.
pub const EXTMEM_ABI_VERSION_MINOR: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: never NULL, valid until this thread's next call.
        unsafe { CStr::from_ptr(extmem_last_error_message()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_is_a_status_and_a_message_not_an_unwind() {
        let s = guard("extmem_test", || panic!("boom {}", 42));
        assert_eq!(s, EXTMEM_ERROR_INTERNAL);
        assert!(last().contains("extmem_test: internal error") && last().contains("boom 42"), "{}", last());
        assert_eq!(guard_value("extmem_test", 7u32, || panic!("again")), 7);
        assert!(last().contains("again"));
    }

    #[test]
    fn errors_map_to_their_status_and_success_clears_the_text() {
        let s = guard("extmem_test", || Err(Error::Import("a pipe is not memory".into()).into()));
        assert_eq!(s, EXTMEM_ERROR_IMPORT_REFUSED);
        assert_eq!(last(), "extmem_test: import refused: a pipe is not memory");
        // A NUL from a peer's text does not cut the message.
        guard("extmem_test", || Err(Failure::arg("a\0b")));
        assert_eq!(last(), "extmem_test: a\\0b");
        assert_eq!(guard("extmem_test", || Ok(EXTMEM_OK)), EXTMEM_OK);
        assert_eq!(last(), "");
    }

    #[test]
    fn every_status_has_its_name() {
        for s in
            [EXTMEM_OK, EXTMEM_TIMEOUT, EXTMEM_END_OF_STREAM, EXTMEM_ERROR_PUBLISHER_CRASHED, EXTMEM_ERROR_INTERNAL]
        {
            // SAFETY: a static string.
            let name = unsafe { CStr::from_ptr(extmem_status_name(s as i32)) }.to_str().unwrap();
            assert_eq!(name, format!("{s:?}"));
        }
        for v in -17..=2 {
            // SAFETY: a static string.
            let name = unsafe { CStr::from_ptr(extmem_status_name(v)) }.to_str().unwrap();
            assert_ne!(name, "EXTMEM_STATUS_UNKNOWN", "{v}");
        }
    }
}
