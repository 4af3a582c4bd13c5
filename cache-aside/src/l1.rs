//! L1, the in-process tier, on `moka::future::Cache`, with a generation guard
//! so that a fill racing an invalidation cannot resurrect a stale value.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;

use crate::entry::{Entry, now_ms};

/// Number of generation counters; keys share them by hash. A shared counter
/// only costs an occasional skipped L1 insert, never a stale read.
const GENERATIONS: usize = 256;

#[derive(Clone)]
struct Slot<V> {
    entry: Entry<V>,
    ttl: Duration,
}

/// Gives each entry its own time to live (moka's per-entry expiration).
///
/// moka evaluates this with the time stamp it already took for the read, so
/// a hit costs no extra clock read (clock reads are slow on some hosts).
struct SlotExpiry;

impl<K, V> Expiry<K, Slot<V>> for SlotExpiry {
    fn expire_after_create(&self, _: &K, slot: &Slot<V>, _: Instant) -> Option<Duration> {
        Some(slot.ttl)
    }

    fn expire_after_update(
        &self,
        _: &K,
        slot: &Slot<V>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.ttl)
    }
}

/// Taken before a fill reads L2 or the loader, and checked around the L1
/// insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    index: usize,
    generation: u64,
    epoch: u64,
}

/// L1: a bounded moka cache with per-entry TTLs and generation guards.
pub(crate) struct L1<K, V> {
    cache: moka::future::Cache<K, Slot<V>>,
    ttl_cap: Duration,
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
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(max_capacity)
                .expire_after(SlotExpiry)
                .build(),
            ttl_cap,
            generations: (0..GENERATIONS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            hasher: RandomState::new(),
        }
    }

    #[inline]
    pub(crate) async fn get(&self, key: &K) -> Option<Entry<V>> {
        self.cache.get(key).await.map(|slot| slot.entry)
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
        let remaining = entry.expires_at_ms.saturating_sub(now_ms());
        if remaining == 0 {
            return true;
        }
        let ttl = self.ttl_cap.min(Duration::from_millis(remaining));
        self.cache
            .insert(
                key.clone(),
                Slot {
                    entry: entry.clone(),
                    ttl,
                },
            )
            .await;
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
