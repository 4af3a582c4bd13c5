//! Reading one key past L1: misses coalesced per process, and early
//! refreshes of values L1 still holds.

use std::hash::Hash;

use tracing::Instrument;

use super::inner::{Inner, L1Snapshot};
#[cfg(feature = "moka")]
use crate::error::Error;
use crate::flight::{Outcome, Role};
use crate::loader::Loader;
use crate::stats::bump;

/// What an early refresh produced.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(super) enum Refreshed<V> {
    /// The loader's fresh answer; `None`: the key no longer exists.
    Loaded(Option<V>),
    /// Nothing new: another instance holds the lease, or L2 is being
    /// bypassed. The current value is still valid.
    #[cfg(feature = "redis")]
    Skipped,
}

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    /// Answers a key L1 does not hold. Concurrent misses of one key share
    /// one fill.
    pub(super) async fn miss(&self, key: &K) -> Outcome<V, L::Error> {
        loop {
            match self.flights.join(key) {
                Role::Follower(follower) => {
                    bump(&self.stats.coalesced);
                    if let Some(outcome) = follower.wait().await {
                        return outcome;
                    }
                    // The leader was cancelled: take over.
                }
                Role::Leader(leader) => {
                    // A previous flight may have filled L1 between our miss
                    // and now.
                    if let Some(entry) = self.l1_get(key).await {
                        let outcome = Ok(entry.value);
                        leader.finish(&outcome);
                        return outcome;
                    }
                    let span =
                        tracing::debug_span!("cache_aside.fill", cache = %self.settings.name);
                    let outcome = self.fill_miss(key).instrument(span).await;
                    leader.finish(&outcome);
                    return outcome;
                }
            }
        }
    }

    /// An early refresh of a value that L1 still holds. At most one runs per
    /// key in this process; everyone else keeps the current value.
    #[cfg(feature = "moka")]
    pub(super) async fn refresh(&self, key: &K, current: Option<V>) -> Outcome<V, L::Error> {
        let Some(leader) = self.flights.try_lead(key) else {
            return Ok(current);
        };
        bump(&self.stats.early_refreshes);
        let span = tracing::debug_span!("cache_aside.refresh", cache = %self.settings.name);
        let outcome = match self.fill_refresh(key).instrument(span).await {
            Ok(Refreshed::Loaded(fresh)) => Ok(fresh),
            // Busy elsewhere or failed: the current value is still valid.
            #[cfg(feature = "redis")]
            Ok(Refreshed::Skipped) => Ok(current),
            Err(_) => Ok(current),
        };
        leader.finish(&outcome);
        outcome
    }

    /// Answers a miss from L2, else the loader.
    async fn fill_miss(&self, key: &K) -> Outcome<V, L::Error> {
        let snap = self.l1_snapshot(key);
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            return self.fill_miss_through_l2(l2, key, snap).await;
        }
        self.load_into_l1(key, snap).await
    }

    /// Loads a fresh value for an early refresh.
    #[cfg(feature = "moka")]
    async fn fill_refresh(&self, key: &K) -> Result<Refreshed<V>, Error<L::Error>> {
        let snap = self.l1_snapshot(key);
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            return self.refresh_through_l2(l2, key, snap).await;
        }
        self.load_into_l1(key, snap).await.map(Refreshed::Loaded)
    }

    /// Loads without L2 and stores in L1 only.
    pub(super) async fn load_into_l1(&self, key: &K, snap: L1Snapshot) -> Outcome<V, L::Error> {
        let (value, delta) = self.load(key).await?;
        match self.entry_for(key, value, delta) {
            Some(entry) => {
                self.l1_fill(key, &entry, snap).await;
                Ok(entry.value)
            }
            None => Ok(None),
        }
    }
}
