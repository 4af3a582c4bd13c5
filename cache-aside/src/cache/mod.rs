//! The cache handle and its public calls. Each path has its own module:
//! `read` (one key past L1), `l2_fill` (one key through L2), `get_many`,
//! `invalidation`; the loader runs in `load`, and the state is `inner`.

mod get_many;
mod inner;
mod invalidation;
#[cfg(feature = "redis")]
mod l2_fill;
mod load;
mod read;

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use tracing::Instrument;

use self::inner::Inner;
#[cfg(feature = "moka")]
use crate::clock;
#[cfg(feature = "moka")]
use crate::entry::should_refresh_early;
use crate::error::Error;
use crate::loader::Loader;
use crate::settings::Config;
use crate::stats::CacheStats;
#[cfg(feature = "moka")]
use crate::stats::bump;

/// A cache-aside cache: reads look in L1 (in process), then L2 (Redis), then
/// call the [`Loader`] and store what it returns.
///
/// Cloning is cheap and clones share everything. Built by
/// [`CacheBuilder`](crate::CacheBuilder); see the [crate documentation](crate)
/// for an example and the guarantees.
pub struct Cache<K, V, L: Loader<K, V>> {
    inner: Arc<Inner<K, V, L>>,
}

impl<K, V, L: Loader<K, V>> Clone for Cache<K, V, L> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, L: Loader<K, V>> fmt::Debug for Cache<K, V, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cache");
        d.field("settings", &self.inner.settings);
        #[cfg(feature = "moka")]
        d.field("l1", &self.inner.l1.is_some());
        #[cfg(feature = "redis")]
        d.field("l2", &self.inner.l2);
        d.field("stats", &self.inner.stats.snapshot()).finish()
    }
}

impl<K, V, L> Cache<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    pub(crate) fn new(config: Config<K, V>, loader: L) -> Self {
        Self {
            inner: Inner::start(config, loader),
        }
    }

    /// Returns the value for `key`: from L1, else L2, else the loader (whose
    /// answer is then stored). `Ok(None)` means the loader found nothing
    /// (possibly answered from a cached negative entry).
    ///
    /// Concurrent misses of one key in this process run one load; with L2,
    /// a lease makes the whole fleet run one load, others waiting for its
    /// result.
    ///
    /// # Errors
    ///
    /// [`Error::Load`] when the loader fails (every coalesced caller gets the
    /// same `Arc`); Redis errors only in [`FailMode::Closed`](crate::FailMode::Closed).
    pub async fn get(&self, key: &K) -> Result<Option<V>, Error<L::Error>> {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.inner.l1 {
            if let Some(entry) = l1.get(key).await {
                let stats = &self.inner.stats;
                bump(&stats.l1_hits);
                if entry.value.is_none() {
                    bump(&stats.negative_hits);
                }
                if let Some(beta) = self.inner.settings.early_refresh
                    && should_refresh_early(
                        beta,
                        entry.delta_ms,
                        entry.expires_at_ms,
                        clock::now_ms(),
                    )
                {
                    return Box::pin(self.inner.refresh(key, entry.value)).await;
                }
                return Ok(entry.value);
            }
            bump(&self.inner.stats.l1_misses);
        }
        Box::pin(self.inner.miss(key)).await
    }

    /// Returns the values of `keys` that exist, reading L1, then L2 with a
    /// single `MGET`, then calling [`Loader::load_many`] once for all the
    /// remaining keys. Keys the loader does not return get negative entries.
    ///
    /// Bulk loads are not coalesced with concurrent `get`s and take no lease;
    /// they do respect invalidations (generation check) like every fill.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn get_many<I>(&self, keys: I) -> Result<HashMap<K, V>, Error<L::Error>>
    where
        I: IntoIterator<Item = K>,
    {
        let keys: Vec<K> = keys.into_iter().collect();
        let span = tracing::debug_span!("cache_aside.get_many", cache = %self.inner.settings.name, keys = keys.len());
        Box::pin(self.inner.get_many(keys)).instrument(span).await
    }

    /// Removes `key` from this instance's L1, from L2, and (through the
    /// invalidation channel) from every other instance's L1. A fill that
    /// started before this call cannot store its value afterwards, in either
    /// tier; calls that begin after it returns never see the old value here,
    /// and see it elsewhere only until the message arrives.
    ///
    /// # Errors
    ///
    /// A Redis error or timeout, whatever the [`FailMode`](crate::FailMode):
    /// the L1 copy is gone, but L2 and the other instances may still
    /// hold the old value, so the caller should retry or alert.
    pub async fn invalidate(&self, key: &K) -> Result<(), Error<L::Error>> {
        let span =
            tracing::debug_span!("cache_aside.invalidate", cache = %self.inner.settings.name);
        Box::pin(self.inner.invalidate(key)).instrument(span).await
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    /// The cache's name (also its Redis key prefix).
    pub fn name(&self) -> &str {
        &self.inner.settings.name
    }

    /// The loader.
    pub fn loader(&self) -> &L {
        &self.inner.loader
    }

    /// Whether the invalidation channel is currently subscribed (always
    /// `false` without L2). Useful as a readiness signal: until it is, L1
    /// relies on its TTL alone, and it is flushed when the subscription
    /// (re)connects.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn is_subscribed(&self) -> bool {
        self.inner
            .l2
            .as_ref()
            .is_some_and(crate::l2::L2::is_subscribed)
    }
}
