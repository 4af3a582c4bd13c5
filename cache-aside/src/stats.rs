//! Counters and their snapshot.

use crate::metrics::{self, LoadLatency, Stat};

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
    /// Invalidations this instance announced on L2's channel.
    pub invalidations_sent: u64,
    /// Invalidation messages received on L2's channel.
    pub invalidations_received: u64,
    /// Whole-L1 flushes after the invalidation subscription (re)connected.
    pub l1_flushes: u64,
    /// Values found in L2 that could not be decoded (treated as misses).
    pub decode_errors: u64,
}

/// The counters of one cache; with the `metrics` feature each also feeds
/// its metric (see `metrics.rs`).
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) l1_hits: Stat,
    pub(crate) l1_misses: Stat,
    pub(crate) l2_hits: Stat,
    pub(crate) l2_misses: Stat,
    pub(crate) negative_hits: Stat,
    pub(crate) loads: Stat,
    pub(crate) load_errors: Stat,
    pub(crate) load_latency: LoadLatency,
    pub(crate) coalesced: Stat,
    pub(crate) lease_waits: Stat,
    pub(crate) redis_errors: Stat,
    pub(crate) fail_open: Stat,
    pub(crate) stale_fills: Stat,
    pub(crate) early_refreshes: Stat,
    pub(crate) invalidations_sent: Stat,
    pub(crate) invalidations_received: Stat,
    pub(crate) l1_flushes: Stat,
    pub(crate) decode_errors: Stat,
}

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(counter: &Stat) {
    counter.bump();
}

impl Counters {
    /// The counters of the cache named `cache`.
    pub(crate) fn new(cache: &str) -> Self {
        let stat = |name| Stat::new(name, cache, &[]);
        Counters {
            l1_hits: Stat::new(metrics::HITS, cache, &[("tier", "l1")]),
            l1_misses: Stat::new(metrics::MISSES, cache, &[("tier", "l1")]),
            l2_hits: Stat::new(metrics::HITS, cache, &[("tier", "l2")]),
            l2_misses: Stat::new(metrics::MISSES, cache, &[("tier", "l2")]),
            negative_hits: stat(metrics::NEGATIVE_HITS),
            loads: stat(metrics::LOADS),
            load_errors: stat(metrics::LOAD_ERRORS),
            load_latency: LoadLatency::new(cache),
            coalesced: Stat::new(metrics::COALESCED, cache, &[("scope", "process")]),
            lease_waits: Stat::new(metrics::COALESCED, cache, &[("scope", "fleet")]),
            redis_errors: stat(metrics::L2_ERRORS),
            fail_open: stat(metrics::FAIL_OPEN),
            stale_fills: stat(metrics::FILLS_DISCARDED),
            early_refreshes: stat(metrics::EARLY_REFRESHES),
            invalidations_sent: stat(metrics::INVALIDATIONS_SENT),
            invalidations_received: stat(metrics::INVALIDATIONS_RECEIVED),
            l1_flushes: stat(metrics::L1_FLUSHES),
            decode_errors: stat(metrics::DECODE_ERRORS),
        }
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            l1_hits: self.l1_hits.get(),
            l1_misses: self.l1_misses.get(),
            l2_hits: self.l2_hits.get(),
            l2_misses: self.l2_misses.get(),
            negative_hits: self.negative_hits.get(),
            loads: self.loads.get(),
            load_errors: self.load_errors.get(),
            coalesced: self.coalesced.get(),
            lease_waits: self.lease_waits.get(),
            redis_errors: self.redis_errors.get(),
            fail_open: self.fail_open.get(),
            stale_fills: self.stale_fills.get(),
            early_refreshes: self.early_refreshes.get(),
            invalidations_sent: self.invalidations_sent.get(),
            invalidations_received: self.invalidations_received.get(),
            l1_flushes: self.l1_flushes.get(),
            decode_errors: self.decode_errors.get(),
        }
    }
}
