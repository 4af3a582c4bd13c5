//! Filling one key through L2: a value another instance stored, else a
//! load under the fleet-wide lease, stored only if no invalidation
//! intervened; around L2 when Redis fails.

use std::hash::Hash;
use std::time::Instant;

use super::inner::{Inner, L1Snapshot};
use super::read::Refreshed;
use crate::entry::{Entry, now_ms, should_refresh_early};
use crate::error::Error;
use crate::flight::Outcome;
use crate::l2::lease::{Acquire, FIRST_POLL, LeaseFor, next_poll, token};
use crate::l2::{Failure, L2, Lookup};
use crate::loader::Loader;
use crate::settings::FailMode;
use crate::stats::bump;

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    /// Answers a miss from L2, else loads under the lease.
    pub(super) async fn fill_miss_through_l2(
        &self,
        l2: &L2<K, V>,
        key: &K,
        snap: L1Snapshot,
    ) -> Outcome<V, L::Error> {
        if let Err(failure) = l2.check_available() {
            return self.around_l2(l2, key, snap, failure).await;
        }
        match l2.get(key).await {
            Ok(Lookup::Hit(entry)) => {
                let entry = self.l2_hit(key, entry, snap).await;
                let due = self.settings.early_refresh.is_some_and(|beta| {
                    should_refresh_early(beta, entry.delta_ms, entry.expires_at_ms, now_ms())
                });
                if !due {
                    return Ok(entry.value);
                }
                bump(&self.stats.early_refreshes);
                match self.refresh_under_lease(l2, key, snap).await {
                    Ok(Refreshed::Loaded(fresh)) => Ok(fresh),
                    Ok(Refreshed::Skipped) | Err(_) => Ok(entry.value),
                }
            }
            Ok(Lookup::Miss) => {
                bump(&self.stats.l2_misses);
                self.lease_and_load(l2, key, snap).await
            }
            Err(failure) => self.around_l2(l2, key, snap, failure).await,
        }
    }

    /// Loads a fresh value for an early refresh, unless L2 is being
    /// bypassed.
    #[cfg(feature = "moka")]
    pub(super) async fn refresh_through_l2(
        &self,
        l2: &L2<K, V>,
        key: &K,
        snap: L1Snapshot,
    ) -> Result<Refreshed<V>, Error<L::Error>> {
        if l2.check_available().is_err() {
            return Ok(Refreshed::Skipped);
        }
        self.refresh_under_lease(l2, key, snap).await
    }

    /// Redis failed (or is being bypassed): fail open or closed.
    async fn around_l2(
        &self,
        l2: &L2<K, V>,
        key: &K,
        snap: L1Snapshot,
        failure: Failure,
    ) -> Outcome<V, L::Error> {
        match l2.fail_mode() {
            FailMode::Closed => Err(failure.into_error()),
            FailMode::Open => {
                bump(&self.stats.fail_open);
                self.load_into_l1(key, snap).await
            }
        }
    }

    /// Counts a value found in L2 and copies it to L1.
    async fn l2_hit(&self, key: &K, entry: Entry<V>, snap: L1Snapshot) -> Entry<V> {
        bump(&self.stats.l2_hits);
        if entry.value.is_none() {
            bump(&self.stats.negative_hits);
        }
        self.l1_store(key, &entry, snap).await;
        entry
    }

    /// Takes the fill lease and loads, or waits for the instance holding it
    /// and reads what it stores; loads without the lease if that takes
    /// longer than the lease wait.
    async fn lease_and_load(
        &self,
        l2: &L2<K, V>,
        key: &K,
        snap: L1Snapshot,
    ) -> Outcome<V, L::Error> {
        let token = token();
        let deadline = Instant::now() + l2.lease_wait();
        let mut pause = FIRST_POLL;
        let mut waited = false;
        loop {
            let acquired = match l2.acquire(key, &token, LeaseFor::Miss).await {
                Ok(acquired) => acquired,
                Err(failure) => return self.around_l2(l2, key, snap, failure).await,
            };
            match acquired {
                Acquire::Found(entry) => return Ok(self.l2_hit(key, entry, snap).await.value),
                Acquire::Acquired(generation) => {
                    return self
                        .load_and_fill(l2, key, snap, &generation, Some(&token))
                        .await;
                }
                Acquire::Held(generation) => {
                    if !waited {
                        waited = true;
                        bump(&self.stats.lease_waits);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        tracing::debug!(cache = %self.settings.name, "lease wait expired; loading without the lease");
                        return self.load_and_fill(l2, key, snap, &generation, None).await;
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = next_poll(pause);
                }
            }
        }
    }

    /// Refreshes early if the lease is free; a held lease means another
    /// instance is on it, and a Redis failure means not now.
    async fn refresh_under_lease(
        &self,
        l2: &L2<K, V>,
        key: &K,
        snap: L1Snapshot,
    ) -> Result<Refreshed<V>, Error<L::Error>> {
        let token = token();
        match l2.acquire(key, &token, LeaseFor::Refresh).await {
            Ok(Acquire::Acquired(generation)) => self
                .load_and_fill(l2, key, snap, &generation, Some(&token))
                .await
                .map(Refreshed::Loaded),
            Ok(Acquire::Found(entry)) => {
                Ok(Refreshed::Loaded(self.l2_hit(key, entry, snap).await.value))
            }
            Ok(Acquire::Held(_)) | Err(_) => Ok(Refreshed::Skipped),
        }
    }

    /// Loads and stores in Redis only if the key's generation is still
    /// `generation`, then in L1 only if Redis accepted it (or could not be
    /// reached) and the L1 generation did not move either.
    async fn load_and_fill(
        &self,
        l2: &L2<K, V>,
        key: &K,
        snap: L1Snapshot,
        generation: &str,
        token: Option<&str>,
    ) -> Outcome<V, L::Error> {
        let (value, delta) = match self.load(key).await {
            Ok(loaded) => loaded,
            Err(error) => {
                if let Some(token) = token {
                    l2.release(key, token).await;
                }
                return Err(error);
            }
        };
        let Some(entry) = self.entry_for(key, value, delta) else {
            if let Some(token) = token {
                l2.release(key, token).await;
            }
            return Ok(None);
        };
        match l2.fill(&[(key, &entry, generation)], token).await {
            Ok(stored) if stored.first() == Some(&true) => {
                self.l1_store(key, &entry, snap).await;
            }
            Ok(_) => self.fill_lost(),
            // Redis went away mid-fill: the value is fresh, keep it in L1.
            Err(_) => self.l1_fill(key, &entry, snap).await,
        }
        Ok(entry.value)
    }
}
