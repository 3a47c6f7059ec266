//! Who holds which sub-allocation: the producer and each consumer it was handed to. A
//! sub-allocation is free again only when all of them released it; every sub-allocation gets
//! a new generation, so a handle kept past its release, or made up, is refused. Pure
//! bookkeeping (no Vulkan).

use crate::error::{Error, Result};
use crate::pool_desc::PoolHandle;
use std::collections::{BTreeSet, HashMap};

/// A consumer of a pool, as the producer knows it (one per connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(pub(crate) u32);

#[derive(Debug)]
struct Live {
    handle: PoolHandle,
    producer: bool,
    holders: BTreeSet<ConsumerId>,
}

/// The live sub-allocations of a pool, by (block, offset).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    live: HashMap<(u32, u64), Live>,
    last_generation: u64,
}

impl Ledger {
    /// A new live sub-allocation, held by the producer.
    pub(crate) fn insert(&mut self, block: u32, offset: u64, size: u64) -> PoolHandle {
        self.last_generation += 1;
        let handle = PoolHandle { block, offset, size, generation: self.last_generation };
        self.live.insert((block, offset), Live { handle, producer: true, holders: BTreeSet::new() });
        handle
    }

    fn find(&mut self, h: &PoolHandle) -> Result<&mut Live> {
        let live = self.live.get_mut(&(h.block, h.offset)).ok_or_else(|| {
            Error::Pool(format!("no live sub-allocation at {h}: it was released, or the handle is made up"))
        })?;
        if live.handle.generation != h.generation {
            return Err(Error::Pool(format!(
                "stale handle {h}: that range was released and is now generation {}",
                live.handle.generation
            )));
        }
        if live.handle.size != h.size {
            return Err(Error::Pool(format!(
                "forged handle {h}: the sub-allocation there has {} bytes",
                live.handle.size
            )));
        }
        Ok(live)
    }

    /// `consumer` is handed the sub-allocation (it holds it until it releases it or goes).
    pub(crate) fn add_holder(&mut self, h: &PoolHandle, consumer: ConsumerId) -> Result<()> {
        let live = self.find(h)?;
        if !live.producer {
            return Err(Error::Pool(format!("{h} was released by the producer: hand over live sub-allocations only")));
        }
        if !live.holders.insert(consumer) {
            return Err(Error::Pool(format!("consumer {} already holds {h}", consumer.0)));
        }
        Ok(())
    }

    /// `consumer` released `h`; the handle back when nobody holds it any more.
    pub(crate) fn release_holder(&mut self, h: &PoolHandle, consumer: ConsumerId) -> Result<Option<PoolHandle>> {
        let live = self.find(h)?;
        if !live.holders.remove(&consumer) {
            return Err(Error::Pool(format!("consumer {} released {h}, which it does not hold", consumer.0)));
        }
        Ok(self.take_if_free(h))
    }

    /// The producer released `h`; the handle back when nobody holds it any more.
    pub(crate) fn release_producer(&mut self, h: &PoolHandle) -> Result<Option<PoolHandle>> {
        let live = self.find(h)?;
        if !std::mem::take(&mut live.producer) {
            return Err(Error::Pool(format!("the producer released {h} twice")));
        }
        Ok(self.take_if_free(h))
    }

    fn take_if_free(&mut self, h: &PoolHandle) -> Option<PoolHandle> {
        let key = (h.block, h.offset);
        let live = self.live.get(&key)?;
        (!live.producer && live.holders.is_empty()).then(|| self.live.remove(&key).expect("present").handle)
    }

    /// `consumer` is gone: everything it held is released; the handles now free.
    pub(crate) fn forget_consumer(&mut self, consumer: ConsumerId) -> Vec<PoolHandle> {
        let held: Vec<PoolHandle> =
            self.live.values().filter(|l| l.holders.contains(&consumer)).map(|l| l.handle).collect();
        held.iter().filter_map(|h| self.release_holder(h, consumer).ok().flatten()).collect()
    }

    /// How many consumers hold `h` (None: not live).
    pub(crate) fn holders(&self, h: &PoolHandle) -> Option<usize> {
        self.live.get(&(h.block, h.offset)).filter(|l| l.handle == *h).map(|l| l.holders.len())
    }

    /// Whether `consumer` holds `h`.
    pub(crate) fn holds(&self, h: &PoolHandle, consumer: ConsumerId) -> bool {
        self.live.get(&(h.block, h.offset)).is_some_and(|l| l.handle == *h && l.holders.contains(&consumer))
    }

    /// Live sub-allocations and their bytes.
    pub(crate) fn live(&self) -> (usize, u64) {
        (self.live.len(), self.live.values().map(|l| l.handle.size).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::{ConsumerId, Ledger};

    #[test]
    fn free_only_when_producer_and_every_holder_released() {
        let mut l = Ledger::default();
        let h = l.insert(0, 0, 4096);
        let (a, b) = (ConsumerId(1), ConsumerId(2));
        l.add_holder(&h, a).unwrap();
        l.add_holder(&h, b).unwrap();
        assert!(l.add_holder(&h, a).unwrap_err().to_string().contains("already holds"));
        assert_eq!(l.release_producer(&h).unwrap(), None);
        assert_eq!(l.release_holder(&h, a).unwrap(), None);
        assert!(l.release_holder(&h, a).unwrap_err().to_string().contains("does not hold"));
        assert_eq!(l.release_holder(&h, b).unwrap(), Some(h));
        assert_eq!(l.live(), (0, 0));
    }

    #[test]
    fn stale_and_forged_handles_are_refused() {
        let mut l = Ledger::default();
        let old = l.insert(0, 0, 4096);
        l.release_producer(&old).unwrap();
        let new = l.insert(0, 0, 4096);
        let e = l.add_holder(&old, ConsumerId(1)).unwrap_err().to_string();
        assert!(e.contains("stale") && e.contains(&format!("generation {}", new.generation)), "{e}");
        let forged = super::PoolHandle { size: 1 << 30, ..new };
        assert!(l.add_holder(&forged, ConsumerId(1)).unwrap_err().to_string().contains("forged"));
        let nowhere = super::PoolHandle { offset: 64, ..new };
        assert!(l.release_holder(&nowhere, ConsumerId(1)).unwrap_err().to_string().contains("no live"));
    }

    #[test]
    fn a_consumer_that_goes_releases_everything_it_held() {
        let mut l = Ledger::default();
        let h1 = l.insert(0, 0, 100);
        let h2 = l.insert(0, 128, 100);
        let (a, b) = (ConsumerId(1), ConsumerId(2));
        for h in [&h1, &h2] {
            l.add_holder(h, a).unwrap();
            l.release_producer(h).ok();
        }
        l.insert(1, 0, 5); // not handed over: stays
        l.add_holder(&h1, b).unwrap_err(); // producer released it: no new holders
        assert_eq!(l.forget_consumer(a).len(), 2);
        assert_eq!(l.live().0, 1);
    }
}
