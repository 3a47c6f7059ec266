//! Opaque handles: each is the number of a live object in one registry, never an address, so
//! a null, destroyed or wrong-kind handle is refused with a status instead of being
//! dereferenced. Numbers are never reused. A lookup hands out a clone of the object's `Arc`,
//! so a destroy racing with a call on the same handle cannot free the object under it.

use crate::status::{extmem_status, CResult, Failure};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// A C handle type and the Rust object behind it.
pub(crate) trait Handle {
    /// The object.
    type Object: Any + Send + Sync;
    /// The C type's name, for errors.
    const NAME: &'static str;
}

type Live = HashMap<usize, Arc<dyn Any + Send + Sync>>;

fn live() -> MutexGuard<'static, Live> {
    static LIVE: OnceLock<Mutex<Live>> = OnceLock::new();
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `object`: its new handle.
pub(crate) fn insert<H: Handle>(object: H::Object) -> *mut H {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    live().insert(id, Arc::new(object));
    id as *mut H
}

/// The object behind `handle`.
pub(crate) fn get<H: Handle>(handle: *const H) -> CResult<Arc<H::Object>> {
    let object = live().get(&(handle as usize)).cloned();
    downcast::<H>(handle as usize, object)
}

/// Unregisters `handle`; the object lives on while a call or a child still holds it.
pub(crate) fn remove<H: Handle>(handle: *mut H) -> CResult<Arc<H::Object>> {
    let id = handle as usize;
    let mut live = live();
    match live.get(&id) {
        Some(o) if o.is::<H::Object>() => downcast::<H>(id, live.remove(&id)),
        other => downcast::<H>(id, other.cloned()),
    }
}

fn downcast<H: Handle>(id: usize, object: Option<Arc<dyn Any + Send + Sync>>) -> CResult<Arc<H::Object>> {
    let invalid = |why: &str| Failure::new(extmem_status::EXTMEM_ERROR_INVALID_HANDLE, format!("{} {why}", H::NAME));
    if id == 0 {
        return Err(invalid("is NULL"));
    }
    let object = object.ok_or_else(|| invalid("is not a live handle (destroyed already, or never made)"))?;
    object.downcast::<H::Object>().map_err(|_| invalid("is a handle of another kind"))
}

/// How many handles are live (tests check that nothing is left).
#[no_mangle]
pub extern "C" fn extmem_live_handle_count() -> u64 {
    std::panic::catch_unwind(|| live().len() as u64).unwrap_or(0)
}

/// Ties an opaque C handle type (written out in full where it is declared: cbindgen reads
/// the source, not macro expansions) to its object.
macro_rules! handle {
    ($name:ident => $object:ty) => {
        impl $crate::handles::Handle for $name {
            type Object = $object;
            const NAME: &'static str = stringify!($name);
        }
    };
}
pub(crate) use handle;

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;
    handle!(A => u32);
    handle!(B => String);

    #[test]
    fn null_destroyed_and_wrong_kind_handles_are_refused() {
        let a = insert::<A>(5);
        let b = insert::<B>("b".into());
        assert_ne!(a as usize, b as usize);
        assert_eq!(*get(a).unwrap(), 5);
        let wrong = get::<B>(a as *const B).unwrap_err();
        assert_eq!(wrong.status, extmem_status::EXTMEM_ERROR_INVALID_HANDLE);
        assert!(wrong.message.contains("another kind"), "{}", wrong.message);
        // A wrong-kind destroy leaves the object alone.
        assert!(remove::<B>(a as *mut B).is_err());
        assert_eq!(*get(a).unwrap(), 5);
        let held = get(a).unwrap();
        remove(a).unwrap();
        assert_eq!(*held, 5, "a call in flight keeps the object");
        assert!(get(a).unwrap_err().message.contains("not a live handle"));
        assert!(remove(a).is_err(), "destroyed twice");
        assert!(get::<A>(std::ptr::null()).unwrap_err().message.contains("is NULL"));
        let c = insert::<A>(6);
        assert_ne!(c as usize, a as usize, "numbers are never reused");
        remove(b).unwrap();
        remove(c).unwrap();
    }
}
