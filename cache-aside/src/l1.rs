//! L1, the in-process tier, on `moka::future::Cache`, with a generation guard
//! so that a fill racing an invalidation cannot resurrect a stale value.
//!
//! moka expires every entry after the L1 TTL cap (its global
//! `time_to_live`, the cheapest policy it has). An entry's own, shorter
//! expiry (a negative entry, jitter, what is left of L2's TTL) is checked on
//! each hit against the coarse clock of `clock.rs`, instead of through moka's
//! per-entry `Expiry`, which costs a hit about a fifth more.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock;
use crate::entry::Entry;

/// Number of generation counters; keys share them by hash. A shared counter
/// only costs an occasional skipped L1 insert, never a stale read.
const GENERATIONS: usize = 256;

/// Taken before a fill reads L2 or the loader, and checked around the L1
/// insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    index: usize,
    generation: u64,
    epoch: u64,
}

/// L1: a bounded moka cache with per-entry expiry and generation guards.
pub(crate) struct L1<K, V> {
    cache: moka::future::Cache<K, Entry<V>>,
    generations: Box<[AtomicU64]>,
    epoch: AtomicU64,
    hasher: RandomState,
}

impl<K, V> L1<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(max_capacity: u64, ttl_cap: Duration) -> Self {
        clock::start();
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(max_capacity)
                .time_to_live(ttl_cap)
                .build(),
            generations: (0..GENERATIONS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            hasher: RandomState::new(),
        }
    }

    /// The entry for `key`, unless it is absent or past its own expiry. An
    /// expired entry stays until a fill replaces it or moka's cap drops it.
    #[inline]
    pub(crate) async fn get(&self, key: &K) -> Option<Entry<V>> {
        self.cache
            .get(key)
            .await
            .filter(|entry| entry.expires_at_ms > clock::now_ms())
    }

    fn index(&self, key: &K) -> usize {
        // Truncation is fine: only the low bits pick a counter.
        (self.hasher.hash_one(key) as usize) % GENERATIONS
    }

    pub(crate) fn snapshot(&self, key: &K) -> Snapshot {
        let index = self.index(key);
        Snapshot {
            index,
            generation: self.generations[index].load(Ordering::SeqCst),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    fn unchanged(&self, snap: Snapshot) -> bool {
        self.generations[snap.index].load(Ordering::SeqCst) == snap.generation
            && self.epoch.load(Ordering::SeqCst) == snap.epoch
    }

    /// Stores `entry` unless the key was invalidated since `snap` was taken.
    ///
    /// Invalidation bumps the generation *then* removes the key; a fill
    /// inserts *then* re-checks the generation. Whatever the interleaving,
    /// either the invalidation removes the insert or the fill sees the bump
    /// and removes it itself.
    ///
    /// Returns `false` only when an invalidation won: the fill is lost.
    pub(crate) async fn store(&self, key: &K, entry: &Entry<V>, snap: Snapshot) -> bool {
        if !self.unchanged(snap) {
            return false;
        }
        if entry.expires_at_ms <= clock::now_ms() {
            return true;
        }
        self.cache.insert(key.clone(), entry.clone()).await;
        if self.unchanged(snap) {
            true
        } else {
            self.cache.invalidate(key).await;
            false
        }
    }

    pub(crate) async fn invalidate(&self, key: &K) {
        self.generations[self.index(key)].fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(key).await;
    }

    /// Empties L1 (when L2's invalidations may have been missed).
    #[cfg(feature = "redis")]
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }
}
