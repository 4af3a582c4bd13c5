//! The metrics a cache emits through the `metrics` facade, behind the
//! `metrics` feature: every counter of [`CacheStats`](crate::CacheStats)
//! under a Prometheus name labelled with the cache's name (and the tier,
//! for hits and misses), plus the loader's latency. Without the feature a
//! [`Stat`] is a bare atomic and [`Timer`] has no fields.
//!
//! The handles are registered when the cache is built, so the recorder must
//! be installed before that (as with any `metrics` handle). The names are
//! listed in `docs/observability.md`.
// The names are used only when the feature is on.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

use std::sync::atomic::{AtomicU64, Ordering};

/// Lookups a tier answered, by `cache` and `tier` (`l1`, `l2`).
pub(crate) const HITS: &str = "cache_hits_total";
/// Lookups a tier could not answer, by `cache` and `tier`.
pub(crate) const MISSES: &str = "cache_misses_total";
/// Hits on a "does not exist" entry, by `cache`.
pub(crate) const NEGATIVE_HITS: &str = "cache_negative_hits_total";
/// Loader calls, by `cache`.
pub(crate) const LOADS: &str = "cache_loads_total";
/// Loader calls that failed, by `cache`.
pub(crate) const LOAD_ERRORS: &str = "cache_load_errors_total";
/// Loader latency, by `cache` and `outcome` (`ok`, `error`).
pub(crate) const LOAD_SECONDS: &str = "cache_load_duration_seconds";
/// Callers that waited for another's load instead of loading, by `cache`
/// and `scope` (`process`: joined a load in this process; `fleet`: waited
/// on another instance's lease).
pub(crate) const COALESCED: &str = "cache_coalesced_waits_total";
/// Redis commands that failed or timed out, by `cache`.
pub(crate) const L2_ERRORS: &str = "cache_l2_errors_total";
/// Reads served without L2 while Redis was failing, by `cache`.
pub(crate) const FAIL_OPEN: &str = "cache_fail_open_bypasses_total";
/// Loaded values dropped because an invalidation won the race, by `cache`.
pub(crate) const FILLS_DISCARDED: &str = "cache_fills_discarded_total";
/// Early (probabilistic) refreshes started, by `cache`.
pub(crate) const EARLY_REFRESHES: &str = "cache_early_refreshes_total";
/// Invalidations this instance announced on L2's channel, by `cache`.
pub(crate) const INVALIDATIONS_SENT: &str = "cache_invalidations_sent_total";
/// Invalidation messages received on L2's channel, by `cache`.
pub(crate) const INVALIDATIONS_RECEIVED: &str = "cache_invalidations_received_total";
/// Whole-L1 flushes after the subscription (re)connected, by `cache`.
pub(crate) const L1_FLUSHES: &str = "cache_l1_flushes_total";
/// Values in L2 that could not be decoded, by `cache`.
pub(crate) const DECODE_ERRORS: &str = "cache_decode_errors_total";

/// One counter: the atomic behind [`CacheStats`](crate::CacheStats) and,
/// with the feature, its metric.
#[derive(Debug)]
pub(crate) struct Stat {
    count: AtomicU64,
    #[cfg(feature = "metrics")]
    metric: metrics::Counter,
}

impl Stat {
    /// The counter `name` of the cache `cache`, with the extra `labels`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(
        name: &'static str,
        cache: &str,
        labels: &[(&'static str, &'static str)],
    ) -> Self {
        Stat {
            count: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metric: {
                let mut all = vec![metrics::Label::new("cache", cache.to_owned())];
                all.extend(labels.iter().map(|(k, v)| metrics::Label::new(*k, *v)));
                metrics::counter!(name, all)
            },
        }
    }

    /// Adds one.
    #[inline]
    pub(crate) fn bump(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.metric.increment(1);
    }

    /// The count so far.
    pub(crate) fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The loader's latency histograms of one cache.
#[derive(Debug)]
pub(crate) struct LoadLatency {
    #[cfg(feature = "metrics")]
    ok: metrics::Histogram,
    #[cfg(feature = "metrics")]
    error: metrics::Histogram,
}

impl LoadLatency {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(cache: &str) -> Self {
        #[cfg(feature = "metrics")]
        let with = |outcome: &'static str| metrics::histogram!(LOAD_SECONDS, "cache" => cache.to_owned(), "outcome" => outcome);
        LoadLatency {
            #[cfg(feature = "metrics")]
            ok: with("ok"),
            #[cfg(feature = "metrics")]
            error: with("error"),
        }
    }

    /// Starts timing a loader call.
    #[inline]
    pub(crate) fn start(&self) -> Timer {
        Timer {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    /// Records a loader call that `ok` or failed.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn stop(&self, timer: Timer, ok: bool) {
        #[cfg(feature = "metrics")]
        if ok { &self.ok } else { &self.error }.record(timer.started.elapsed());
    }
}

/// A loader call being timed; field-less without the feature.
#[derive(Debug)]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}
