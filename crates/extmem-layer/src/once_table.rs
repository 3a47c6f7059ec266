//! A cache of answers learnt once per key, read and filled without a lock: the resource
//! commands consult it on every call, from any thread.
//!
//! A fixed open-addressing table of atomic pointers to immutable entries. An entry is published
//! with one compare-and-swap into an empty slot and never moves or changes until the table is
//! dropped (with its device). Where a key's probe run is full, the answer is not cached: the
//! caller asks the driver again (correct, only slower), so memory stays bounded.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Slots per table (a power of two).
const CAPACITY: usize = 4096;
/// Slots a lookup looks at before it gives up.
const PROBES: usize = 64;

/// Keys and answers of one kind of question.
pub struct OnceTable<K, V> {
    slots: Box<[AtomicPtr<(K, V)>]>,
}

impl<K: Copy + Eq, V> Default for OnceTable<K, V> {
    fn default() -> Self {
        OnceTable { slots: (0..CAPACITY).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect() }
    }
}

impl<K: Copy + Eq, V> OnceTable<K, V> {
    /// The answer for `key`, computing it with `make` the first time (two threads that race
    /// may both compute it; one answer is kept). `hash` spreads keys over the slots.
    pub fn get_or_insert_with<R>(&self, key: K, hash: u64, make: impl FnOnce() -> V, read: impl FnOnce(&V) -> R) -> R {
        // The hash's low bits: kinds created one after another (usually differing in their low
        // bits) land in nearby slots, which the first call of each finds warm in the cache.
        let start = hash as usize;
        let mut fresh: Option<Box<(K, V)>> = None;
        let mut make = Some(make);
        for i in 0..PROBES {
            let slot = &self.slots[(start + i) & (CAPACITY - 1)];
            let mut current = slot.load(Ordering::Acquire);
            loop {
                if current.is_null() {
                    let entry = fresh.take().unwrap_or_else(|| Box::new((key, (make.take().expect("made once"))())));
                    let ptr = Box::into_raw(entry);
                    match slot.compare_exchange(std::ptr::null_mut(), ptr, Ordering::AcqRel, Ordering::Acquire) {
                        // SAFETY: just published; entries live as long as the table.
                        Ok(_) => return read(unsafe { &(*ptr).1 }),
                        Err(other) => {
                            // SAFETY: `ptr` was not published: it is still ours.
                            fresh = Some(unsafe { Box::from_raw(ptr) });
                            current = other;
                        }
                    }
                    continue;
                }
                // SAFETY: a published entry, immutable and alive as long as the table.
                let entry = unsafe { &*current };
                if entry.0 == key {
                    return read(&entry.1);
                }
                break;
            }
        }
        // The probe run is full: answer without caching.
        match fresh {
            Some(entry) => read(&entry.1),
            None => read(&(make.take().expect("made once"))()),
        }
    }
}

impl<K, V> Drop for OnceTable<K, V> {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            let ptr = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
            if !ptr.is_null() {
                // SAFETY: published by `get_or_insert_with` from `Box::into_raw`, freed once.
                drop(unsafe { Box::from_raw(ptr) });
            }
        }
    }
}

/// Yes/no answers keyed by 62 bits, held in the slots themselves (one atomic word each: no
/// allocation and no pointer to follow, which the first call of each kind would pay).
pub struct FlagTable {
    slots: Box<[AtomicU64]>,
}

const OCCUPIED: u64 = 1 << 63;
const YES: u64 = 1 << 62;
/// The bits a key may use.
pub const KEY_BITS: u64 = YES - 1;

impl Default for FlagTable {
    fn default() -> Self {
        FlagTable { slots: (0..CAPACITY).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl FlagTable {
    /// The answer for `key` (at most [`KEY_BITS`]; a larger key is never cached), computing it
    /// with `make` the first time.
    pub fn get_or_insert_with(&self, key: u64, make: impl FnOnce() -> bool) -> bool {
        if key & !KEY_BITS != 0 {
            return make();
        }
        let start = slot_of(hash(&[key as u32, (key >> 32) as u32]));
        let mut answer = None;
        let mut make = Some(make);
        for i in 0..PROBES {
            let slot = &self.slots[(start + i) & (CAPACITY - 1)];
            let mut current = slot.load(Ordering::Acquire);
            loop {
                if current == 0 {
                    let yes = *answer.get_or_insert_with(|| (make.take().expect("made once"))());
                    let entry = OCCUPIED | if yes { YES } else { 0 } | key;
                    match slot.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return yes,
                        Err(other) => current = other,
                    }
                    continue;
                }
                if current & KEY_BITS == key {
                    return current & YES != 0;
                }
                break;
            }
        }
        answer.unwrap_or_else(|| (make.take().expect("made once"))())
    }
}

/// The first slot of a [`FlagTable`] key's hash: its low bits with the high bits folded in (a
/// multiplicative hash's low bits depend only on the keys' low bits, and flag keys differ in
/// their high half).
fn slot_of(hash: u64) -> usize {
    (hash ^ (hash >> 32) ^ (hash >> 48)) as usize
}

/// A hash of a few 32-bit words (multiply-rotate, as FxHash does).
pub fn hash(words: &[u32]) -> u64 {
    words.iter().fold(0u64, |h, &w| (h.rotate_left(5) ^ u64::from(w)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn each_key_is_made_once_and_full_runs_answer_uncached() {
        let table: OnceTable<u32, u32> = OnceTable::default();
        let made = Cell::new(0);
        for round in 0..2 {
            for key in 0..1000u32 {
                let v = table.get_or_insert_with(
                    key,
                    hash(&[key]),
                    || {
                        made.set(made.get() + 1);
                        key * 3
                    },
                    |v| *v,
                );
                assert_eq!(v, key * 3, "round {round}");
            }
        }
        assert_eq!(made.get(), 1000, "the second round is answered from the table");
        // Every key hashed to one slot: the first PROBES are cached, the rest computed each time.
        let crowded: OnceTable<u32, u32> = OnceTable::default();
        let made = Cell::new(0);
        for _ in 0..2 {
            for key in 0..(PROBES as u32 + 10) {
                let v = crowded.get_or_insert_with(
                    key,
                    7,
                    || {
                        made.set(made.get() + 1);
                        key
                    },
                    |v| *v,
                );
                assert_eq!(v, key);
            }
        }
        assert_eq!(made.get(), PROBES + 10 + 10);
    }

    #[test]
    fn flags_are_kept_per_key_and_oversized_keys_are_not_cached() {
        let table = FlagTable::default();
        let made = Cell::new(0);
        for _ in 0..2 {
            for key in 0..3000u64 {
                let key = key << 20;
                let yes = table.get_or_insert_with(key, || {
                    made.set(made.get() + 1);
                    key % 3 == 0
                });
                assert_eq!(yes, key % 3 == 0);
            }
        }
        assert_eq!(made.get(), 3000);
        let big = KEY_BITS + 1;
        let made = Cell::new(0);
        for _ in 0..2 {
            assert!(table.get_or_insert_with(big, || {
                made.set(made.get() + 1);
                true
            }));
        }
        assert_eq!(made.get(), 2);
    }
}
