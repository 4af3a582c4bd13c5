//! The metrics the stores emit through the `metrics` facade, behind the
//! `metrics` feature; without it every function here is empty. Names and
//! labels are listed in `docs/observability.md`.
// The names are used only when the feature is on.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

/// Session cookies that started a fresh session instead, by `reason`
/// (the name session-core counts the same event under).
#[cfg(feature = "cookie")]
pub(crate) const COOKIES_REJECTED: &str = "session_cookies_rejected_total";
/// Session reads the Redis near cache answered.
#[cfg(feature = "redis")]
pub(crate) const NEAR_CACHE_HITS: &str = "session_near_cache_hits_total";
/// Session reads the Redis near cache could not answer.
#[cfg(feature = "redis")]
pub(crate) const NEAR_CACHE_MISSES: &str = "session_near_cache_misses_total";
/// Session reads sent past the near cache because this instance wrote the
/// session recently.
#[cfg(feature = "redis")]
pub(crate) const NEAR_CACHE_BYPASSES: &str = "session_near_cache_bypasses_total";

/// The cookie store rejected a cookie: `why` is its own wording, mapped
/// onto the documented reasons `malformed`, `tampered` and `expired`.
#[cfg(feature = "cookie")]
#[inline]
pub(crate) fn cookie_rejected(why: &'static str) {
    #[cfg(feature = "metrics")]
    {
        let reason = match why {
            "expired" => "expired",
            "not base64"
            | "empty"
            | "unknown format"
            | "truncated"
            | "longer than any cookie this store seals" => "malformed",
            _ => "tampered",
        };
        metrics::counter!(COOKIES_REJECTED, "reason" => reason).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = why;
}

/// A read went past the near cache to Redis after a recent write.
#[cfg(feature = "redis")]
#[inline]
pub(crate) fn near_cache_bypassed() {
    #[cfg(feature = "metrics")]
    metrics::counter!(NEAR_CACHE_BYPASSES).increment(1);
}

/// The near cache's hits and misses as counted so far by redis-rs, turned
/// into counter increments (`fetch_max` keeps concurrent readers from
/// counting a change twice).
#[cfg(all(feature = "redis", feature = "metrics"))]
#[derive(Debug, Default)]
pub(crate) struct NearCacheSeen {
    hits: std::sync::atomic::AtomicUsize,
    misses: std::sync::atomic::AtomicUsize,
}

#[cfg(all(feature = "redis", feature = "metrics"))]
impl NearCacheSeen {
    /// Counts what `stats` adds to what was seen before.
    pub(crate) fn observe(&self, stats: &::redis::caching::CacheStatistics) {
        use std::sync::atomic::Ordering::Relaxed;
        let hits = self.hits.fetch_max(stats.hit, Relaxed);
        if stats.hit > hits {
            metrics::counter!(NEAR_CACHE_HITS).increment((stats.hit - hits) as u64);
        }
        let misses = self.misses.fetch_max(stats.miss, Relaxed);
        if stats.miss > misses {
            metrics::counter!(NEAR_CACHE_MISSES).increment((stats.miss - misses) as u64);
        }
    }
}
