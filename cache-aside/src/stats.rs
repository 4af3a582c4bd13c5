//! Counters and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
///
/// Counters only grow; subtract two snapshots to get a rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered by L1 (negative entries included).
    pub l1_hits: u64,
    /// Lookups L1 could not answer.
    pub l1_misses: u64,
    /// Lookups answered by L2 (negative entries included).
    pub l2_hits: u64,
    /// Lookups L2 could not answer.
    pub l2_misses: u64,
    /// Hits on a negative ("does not exist") entry, in L1 or L2.
    pub negative_hits: u64,
    /// Calls to the loader (`load` or one `load_many` batch).
    pub loads: u64,
    /// Loader calls that failed.
    pub load_errors: u64,
    /// Callers that joined a load already running in this process.
    pub coalesced: u64,
    /// Misses that found another instance's lease and waited for its fill.
    pub lease_waits: u64,
    /// Redis commands that failed or timed out.
    pub redis_errors: u64,
    /// Reads served without L2 because Redis was failing (fail-open).
    pub fail_open: u64,
    /// Fills dropped because the key was invalidated while they loaded.
    pub stale_fills: u64,
    /// Early (probabilistic) refreshes started.
    pub early_refreshes: u64,
    /// Invalidation messages received on L2's channel.
    pub invalidations_received: u64,
    /// Whole-L1 flushes after the invalidation subscription (re)connected.
    pub l1_flushes: u64,
    /// Values found in L2 that could not be decoded (treated as misses).
    pub decode_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) l1_hits: AtomicU64,
    pub(crate) l1_misses: AtomicU64,
    pub(crate) l2_hits: AtomicU64,
    pub(crate) l2_misses: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) fail_open: AtomicU64,
    pub(crate) stale_fills: AtomicU64,
    pub(crate) early_refreshes: AtomicU64,
    pub(crate) invalidations_received: AtomicU64,
    pub(crate) l1_flushes: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
}

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            l1_hits: get(&self.l1_hits),
            l1_misses: get(&self.l1_misses),
            l2_hits: get(&self.l2_hits),
            l2_misses: get(&self.l2_misses),
            negative_hits: get(&self.negative_hits),
            loads: get(&self.loads),
            load_errors: get(&self.load_errors),
            coalesced: get(&self.coalesced),
            lease_waits: get(&self.lease_waits),
            redis_errors: get(&self.redis_errors),
            fail_open: get(&self.fail_open),
            stale_fills: get(&self.stale_fills),
            early_refreshes: get(&self.early_refreshes),
            invalidations_received: get(&self.invalidations_received),
            l1_flushes: get(&self.l1_flushes),
            decode_errors: get(&self.decode_errors),
        }
    }
}
