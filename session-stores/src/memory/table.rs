//! The sessions of a [`MemoryStore`](super::MemoryStore): encoded records
//! in a sharded hash map, each change made under its shard's lock, expired
//! records ignored on access and swept out a shard at a time.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use session_core::Id;

/// Shards of the map: writes to sessions in different shards never wait
/// for each other.
const SHARDS: usize = 32;

/// Writes sweep one shard at most this often (ms), so that every shard is
/// swept within `SHARDS` seconds of steady writing.
const SWEEP_EVERY_MS: i64 = 1_000;

/// One stored session: the compare-and-set version and the expiry beside
/// the encoded record ([`Record::encode`](session_core::store::Record::encode)),
/// so that saves and touches need not decode it.
#[derive(Clone)]
pub(super) struct Stored {
    pub(super) version: u64,
    /// Milliseconds since the Unix epoch; `None` never expires.
    pub(super) expires_ms: Option<i64>,
    /// Shared with the readers that took it, who decode it outside the lock.
    pub(super) encoded: Arc<[u8]>,
}

impl Stored {
    fn live_at(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|at| at > now_ms)
    }
}

type Shard = HashMap<Id, Stored>;

/// The map, its bound and its sweeping.
pub(super) struct Table {
    shards: Box<[RwLock<Shard>]>,
    /// Picks the shard; random per table, so IDs cannot be chosen to crowd
    /// one shard.
    hasher: RandomState,
    max: u64,
    /// Entries held, expired ones not yet swept included.
    len: AtomicU64,
    next_sweep_ms: AtomicI64,
    next_swept: AtomicUsize,
}

impl Table {
    /// An empty table that holds about `max` sessions at most.
    pub(super) fn new(max: u64) -> Self {
        Table::with_shards(max, SHARDS)
    }

    fn with_shards(max: u64, shards: usize) -> Self {
        Table {
            shards: (0..shards).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
            max,
            len: AtomicU64::new(0),
            next_sweep_ms: AtomicI64::new(0),
            next_swept: AtomicUsize::new(0),
        }
    }

    fn shard(&self, id: &Id) -> &RwLock<Shard> {
        let at = (self.hasher.hash_one(id) % self.shards.len() as u64) as usize;
        &self.shards[at]
    }

    /// Entries held, including expired ones not swept out yet.
    pub(super) fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    /// The live entry of `id` at `now_ms`.
    pub(super) fn get(&self, id: &Id, now_ms: i64) -> Option<Stored> {
        let shard = self
            .shard(id)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(id).filter(|s| s.live_at(now_ms)).cloned()
    }

    /// Atomically replaces the entry of `id` with what `change` makes of
    /// the live one (`None` if there is none at `now_ms`); `change`
    /// returning `None` leaves it as it is. Returns whether it was
    /// replaced.
    ///
    /// A new entry in a full table first evicts from its shard: the expired
    /// entries, else the one that expires first.
    pub(super) fn update(
        &self,
        id: &Id,
        now_ms: i64,
        change: impl FnOnce(Option<&Stored>) -> Option<Stored>,
    ) -> bool {
        let replaced = {
            let mut shard = self
                .shard(id)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let current = shard.get(id);
            let held = current.is_some();
            match change(current.filter(|s| s.live_at(now_ms))) {
                None => false,
                Some(new) => {
                    if !held && self.len() >= self.max {
                        self.evict(&mut shard, now_ms);
                    }
                    if shard.insert(id.clone(), new).is_none() {
                        self.len.fetch_add(1, Ordering::Relaxed);
                    }
                    true
                }
            }
        };
        self.sweep_if_due(now_ms);
        replaced
    }

    /// Removes the entry of `id`, live or not.
    pub(super) fn remove(&self, id: &Id) {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.remove(id).is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Room for one more entry in `shard`: its expired entries go and, if
    /// the table is still full, the entry that expires first.
    fn evict(&self, shard: &mut Shard, now_ms: i64) {
        self.drop_expired(shard, now_ms);
        if self.len() < self.max {
            return;
        }
        let first = shard
            .iter()
            .min_by_key(|(_, s)| s.expires_ms.unwrap_or(i64::MAX))
            .map(|(id, _)| id.clone());
        if let Some(id) = first {
            shard.remove(&id);
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn drop_expired(&self, shard: &mut Shard, now_ms: i64) {
        let before = shard.len();
        shard.retain(|_, s| s.live_at(now_ms));
        self.len
            .fetch_sub((before - shard.len()) as u64, Ordering::Relaxed);
    }

    /// Sweeps the next shard's expired entries, when one is due.
    fn sweep_if_due(&self, now_ms: i64) {
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now_ms < due
            || self
                .next_sweep_ms
                .compare_exchange(
                    due,
                    now_ms + SWEEP_EVERY_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let at = self.next_swept.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let mut shard = self.shards[at]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.drop_expired(&mut shard, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: u64, expires_ms: Option<i64>) -> Stored {
        Stored {
            version,
            expires_ms,
            encoded: Arc::from(&b"record"[..]),
        }
    }

    fn put(table: &Table, id: &Id, expires_ms: Option<i64>, now_ms: i64) -> bool {
        table.update(id, now_ms, |_| Some(stored(1, expires_ms)))
    }

    #[test]
    fn expired_entries_are_absent_and_swept() {
        let table = Table::new(100);
        let ids: Vec<Id> = (0..64).map(|_| Id::random()).collect();
        for id in &ids {
            put(&table, id, Some(1_000), 0);
        }
        assert_eq!(table.len(), 64);
        assert!(table.get(&ids[0], 999).is_some());
        assert!(table.get(&ids[0], 1_000).is_none());
        // An update sees no live entry once it has expired.
        assert!(!table.update(&ids[1], 1_000, |cur| cur.cloned()));
        // One shard per second of writes: after SHARDS of them, all swept.
        for s in 0..SHARDS as i64 {
            table.update(&ids[0], 2_000 + s * SWEEP_EVERY_MS, |_| None);
        }
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_full_table_evicts_expired_then_the_first_to_expire() {
        // One shard: eviction looks at the whole table.
        let table = Table::with_shards(2, 1);
        let (old, live, next, last) = (Id::random(), Id::random(), Id::random(), Id::random());
        put(&table, &old, Some(5), 0);
        put(&table, &live, None, 0);
        put(&table, &next, Some(100), 10);
        assert!(table.get(&live, 10).is_some() && table.get(&next, 10).is_some());
        assert_eq!(table.len(), 2, "the expired entry made room");
        put(&table, &last, Some(200), 10);
        assert!(table.get(&next, 10).is_none(), "the first to expire went");
        assert!(table.get(&live, 10).is_some() && table.get(&last, 10).is_some());
        assert_eq!(table.len(), 2);
        // Changing a held entry never evicts.
        assert!(table.update(&live, 10, |cur| cur.cloned()));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_sharded_table_stays_near_its_bound() {
        let table = Table::new(100);
        for n in 0..2_000 {
            put(&table, &Id::random(), Some(10_000 + n), 0);
            assert!(table.len() <= 100 + SHARDS as u64, "{}", table.len());
        }
    }

    #[test]
    fn remove_counts_down() {
        let table = Table::new(10);
        let id = Id::random();
        put(&table, &id, None, 0);
        put(&table, &id, None, 0);
        assert_eq!(table.len(), 1);
        table.remove(&id);
        table.remove(&id);
        assert_eq!(table.len(), 0);
        assert!(table.get(&id, 0).is_none());
    }
}
