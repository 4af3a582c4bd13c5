//! The near cache: recently read sessions kept in this process.
//!
//! The caching itself is redis-rs's server-assisted client-side cache (RESP3
//! and `CLIENT TRACKING`), in opt-in mode so that only session reads use
//! it. This module configures it and keeps the bookkeeping beside it that
//! lets an instance read its own writes.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::caching::{CacheConfig, CacheMode};

/// The client-side cache of a connection with a near cache of `size`
/// sessions, each kept for at most `ttl`.
pub(super) fn cache_config(size: NonZeroUsize, ttl: Duration) -> CacheConfig {
    CacheConfig::new()
        .set_mode(CacheMode::OptIn)
        .set_size(size)
        .set_default_client_ttl(ttl)
}

/// Bookkeeping of the near cache beside redis-rs's own cache.
///
/// An entry can be stale for up to the near cache's TTL: Redis's
/// invalidation of a key can overtake the reply of the read that fills the
/// entry (redis-rs stores the reply after it handed it over, and Redis
/// invalidates a tracked key only once), and a connection that dies
/// without closing delivers none. Reads of a session this store wrote (or
/// tried to write) therefore go to Redis until that TTL has passed since
/// the write was answered, so that an instance always reads its own
/// writes.
pub(super) struct NearCache {
    /// The near cache's TTL: how long reads bypass it after a write.
    window: Duration,
    /// Shared with the [`sibling`](NearCache::sibling)s: a write through
    /// any connection of the store sends its reads to Redis.
    recent: Arc<Mutex<RecentWrites>>,
    /// redis-rs's hit and miss counts already turned into metrics.
    #[cfg(feature = "metrics")]
    pub(super) seen: crate::metrics::NearCacheSeen,
}

struct RecentWrites {
    at: HashMap<String, Instant>,
    /// The size at which old entries are dropped next: twice what was
    /// left after the last pruning, so pruning costs amortised O(1) per
    /// write.
    prune_at: usize,
}

impl NearCache {
    /// Bookkeeping for a near cache whose entries live for `window`.
    pub(super) fn new(window: Duration) -> Self {
        NearCache {
            window,
            recent: Arc::new(Mutex::new(RecentWrites {
                at: HashMap::new(),
                prune_at: 1024,
            })),
            #[cfg(feature = "metrics")]
            seen: crate::metrics::NearCacheSeen::default(),
        }
    }

    /// The bookkeeping of another connection's near cache in the same
    /// store: the same recent writes, its own counts.
    pub(super) fn sibling(&self) -> Self {
        NearCache {
            window: self.window,
            recent: self.recent.clone(),
            #[cfg(feature = "metrics")]
            seen: crate::metrics::NearCacheSeen::default(),
        }
    }

    fn recent(&self) -> MutexGuard<'_, RecentWrites> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a write (or attempted write) of `key`, now.
    pub(super) fn wrote(&self, key: &str) {
        let now = Instant::now();
        let mut recent = self.recent();
        if recent.at.len() >= recent.prune_at {
            recent
                .at
                .retain(|_, at| now.duration_since(*at) < self.window);
            recent.prune_at = (recent.at.len() * 2).max(1024);
        }
        recent.at.insert(key.to_owned(), now);
    }

    /// Whether `key` was written less than the window ago, so that a read
    /// of it must go to Redis.
    pub(super) fn wrote_recently(&self, key: &str) -> bool {
        self.recent()
            .at
            .get(key)
            .is_some_and(|at| at.elapsed() < self.window)
    }
}
