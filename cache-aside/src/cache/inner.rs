//! What a cache holds, shared by its clones, and its access to L1.

use std::hash::Hash;
use std::sync::Arc;

use crate::entry::Entry;
use crate::flight::Flights;
use crate::loader::Loader;
use crate::settings::{Config, EntryTtl, Settings};
use crate::stats::{Counters, bump};

/// Taken before a fill reads L2 or the loader, and checked around the L1
/// insert, so that a fill racing an invalidation cannot store in L1.
#[cfg(feature = "moka")]
pub(super) type L1Snapshot = Option<crate::l1::Snapshot>;
/// Without L1 there is nothing to guard.
#[cfg(not(feature = "moka"))]
#[derive(Clone, Copy)]
pub(super) struct L1Snapshot;

/// The state behind a [`Cache`](crate::Cache) and its clones.
pub(crate) struct Inner<K, V, L: Loader<K, V>> {
    pub(super) settings: Settings,
    pub(super) entry_ttl: Option<EntryTtl<K, V>>,
    pub(super) loader: L,
    pub(super) flights: Flights<K, V, L::Error>,
    pub(super) stats: Arc<Counters>,
    #[cfg(feature = "moka")]
    pub(super) l1: Option<crate::l1::L1<K, V>>,
    #[cfg(feature = "redis")]
    pub(super) l2: Option<crate::l2::L2<K, V>>,
    #[cfg(feature = "redis")]
    listener: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl<K, V, L: Loader<K, V>> Drop for Inner<K, V, L> {
    fn drop(&mut self) {
        #[cfg(feature = "redis")]
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    /// Builds the tiers and, with L2, starts following its invalidation
    /// channel.
    pub(super) fn start(config: Config<K, V>, loader: L) -> Arc<Self> {
        let stats = Arc::new(Counters::new(&config.settings.name));
        #[cfg(feature = "moka")]
        let l1 = config
            .l1
            .capacity
            .map(|capacity| crate::l1::L1::new(capacity, config.l1_ttl()));
        #[cfg(feature = "redis")]
        let l2 = config.l2_server.map(|server| {
            crate::l2::L2::new(server, &config.settings.name, config.l2, Arc::clone(&stats))
        });

        let inner = Arc::new(Inner {
            settings: config.settings,
            entry_ttl: config.entry_ttl,
            loader,
            flights: Flights::new(),
            stats,
            #[cfg(feature = "moka")]
            l1,
            #[cfg(feature = "redis")]
            l2,
            #[cfg(feature = "redis")]
            listener: std::sync::OnceLock::new(),
        });

        #[cfg(feature = "redis")]
        if inner.l2.is_some() {
            let task = tokio::spawn(crate::l2::listener::listen(Arc::downgrade(&inner)));
            let _ = inner.listener.set(task.abort_handle());
        }
        inner
    }

    /// The entry in L1, if any.
    pub(super) async fn l1_get(&self, key: &K) -> Option<Entry<V>> {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.l1 {
            return l1.get(key).await;
        }
        let _ = key;
        None
    }

    #[cfg(feature = "moka")]
    pub(super) fn l1_snapshot(&self, key: &K) -> L1Snapshot {
        self.l1.as_ref().map(|l1| l1.snapshot(key))
    }

    #[cfg(not(feature = "moka"))]
    pub(super) fn l1_snapshot(&self, _key: &K) -> L1Snapshot {
        L1Snapshot
    }

    /// Stores `entry` in L1 unless the key was invalidated since `snap`.
    /// Returns `false` when an invalidation won.
    pub(super) async fn l1_store(&self, key: &K, entry: &Entry<V>, snap: L1Snapshot) -> bool {
        #[cfg(feature = "moka")]
        if let (Some(l1), Some(snap)) = (&self.l1, snap) {
            return l1.store(key, entry, snap).await;
        }
        #[cfg(not(feature = "moka"))]
        let _ = (key, entry, snap);
        true
    }

    /// Stores a value just loaded in L1 when L1 is the only tier it goes
    /// to, counting the fill as discarded when an invalidation won (with
    /// L2, the L2 fill counts it).
    pub(super) async fn l1_fill(&self, key: &K, entry: &Entry<V>, snap: L1Snapshot) {
        if !self.l1_store(key, entry, snap).await {
            self.fill_lost();
        }
    }

    /// Counts a loaded value that was not stored because the key was
    /// invalidated during the load.
    pub(super) fn fill_lost(&self) {
        bump(&self.stats.stale_fills);
        tracing::debug!(cache = %self.settings.name, "key invalidated during the load; value not stored");
    }
}
