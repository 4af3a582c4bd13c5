//! The cache and its read, fill and invalidation paths.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::builder::{CacheBuilder, EntryTtl};
use crate::entry::{Entry, jittered, now_ms, should_refresh_early};
use crate::error::Error;
use crate::flight::{Flights, Outcome, Role};
use crate::loader::Loader;
use crate::stats::{CacheStats, Counters, bump};

#[cfg(feature = "redis")]
use crate::FailMode;
#[cfg(feature = "redis")]
use crate::shared::{Acquire, Failure, Lookup, Shared};

/// Options that do not depend on the key and value types.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) ttl: Duration,
    pub(crate) jitter: f64,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) early_refresh: Option<f64>,
}

#[cfg(feature = "moka")]
type Snap = Option<crate::local::Snapshot>;
/// Without L1 there is nothing to guard.
#[cfg(not(feature = "moka"))]
#[derive(Clone, Copy)]
struct Snap;

/// A cache-aside cache: reads look in L1 (in process), then L2 (Redis), then
/// call the [`Loader`] and store what it returns.
///
/// Cloning is cheap and clones share everything. Built by [`CacheBuilder`];
/// see the [crate documentation](crate) for an example and the guarantees.
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

pub(crate) struct Inner<K, V, L: Loader<K, V>> {
    settings: Settings,
    entry_ttl: Option<EntryTtl<K, V>>,
    loader: L,
    flights: Flights<K, V, L::Error>,
    stats: Arc<Counters>,
    #[cfg(feature = "moka")]
    l1: Option<crate::local::Local<K, V>>,
    #[cfg(feature = "redis")]
    l2: Option<Shared<K, V>>,
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

impl<K, V, L> Cache<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    pub(crate) fn from_builder(builder: CacheBuilder<K, V>, loader: L) -> Self {
        let stats = Arc::new(Counters::default());
        #[cfg(feature = "moka")]
        let l1 = builder.l1_capacity.map(|capacity| {
            #[cfg(feature = "redis")]
            let has_l2 = builder.redis.is_some();
            #[cfg(not(feature = "redis"))]
            let has_l2 = false;
            let default_cap = if has_l2 {
                builder.settings.ttl.min(Duration::from_secs(10))
            } else {
                builder.settings.ttl
            };
            crate::local::Local::new(capacity, builder.l1_ttl.unwrap_or(default_cap))
        });

        #[cfg(feature = "redis")]
        let l2 = builder.redis.map(|(client, codec)| {
            Shared::new(
                client,
                &builder.settings.name,
                builder.redis_options,
                codec,
                Arc::clone(&stats),
            )
        });

        let inner = Arc::new(Inner {
            settings: builder.settings,
            entry_ttl: builder.entry_ttl,
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
            let task = tokio::spawn(crate::shared::listen(Arc::downgrade(&inner)));
            let _ = inner.listener.set(task.abort_handle());
        }

        Self { inner }
    }

    /// Returns the value for `key`: from L1, else L2, else the loader (whose
    /// answer is then stored). `Ok(None)` means the loader found nothing
    /// (possibly answered from a cached negative entry).
    ///
    /// Concurrent misses of one key in this process run one load; with Redis,
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
                    && should_refresh_early(beta, entry.delta_ms, entry.expires_at_ms, now_ms())
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

    /// Removes `key` from this instance's L1, from Redis, and (through the
    /// invalidation channel) from every other instance's L1. A fill that
    /// started before this call cannot store its value afterwards, in either
    /// tier; calls that begin after it returns never see the old value here,
    /// and see it elsewhere only until the message arrives.
    ///
    /// # Errors
    ///
    /// A Redis error or timeout, whatever the [`FailMode`](crate::FailMode):
    /// the local copy is gone, but Redis and the other instances may still
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
    /// `false` without Redis). Useful as a readiness signal: until it is, L1
    /// relies on its TTL alone, and it is flushed when the subscription
    /// (re)connects.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn is_subscribed(&self) -> bool {
        self.inner.l2.as_ref().is_some_and(Shared::is_subscribed)
    }
}

/// What a fill is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing usable is cached here.
    Miss,
    /// The cached value is still valid but due for an early refresh.
    Refresh,
}

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    #[cfg(feature = "moka")]
    fn l1_snapshot(&self, key: &K) -> Snap {
        self.l1.as_ref().map(|l1| l1.snapshot(key))
    }

    #[cfg(not(feature = "moka"))]
    fn l1_snapshot(&self, _key: &K) -> Snap {
        Snap
    }

    async fn l1_store(&self, key: &K, entry: &Entry<V>, snap: Snap) {
        #[cfg(feature = "moka")]
        if let (Some(l1), Some(snap)) = (&self.l1, snap) {
            l1.store(key, entry, snap).await;
        }
        #[cfg(not(feature = "moka"))]
        let _ = (key, entry, snap);
    }

    async fn l1_get(&self, key: &K) -> Option<Entry<V>> {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.l1 {
            return l1.get(key).await;
        }
        let _ = key;
        None
    }

    /// Drops the local copy and detaches a running local load, so that
    /// callers from now on start afresh.
    async fn invalidate_local(&self, key: &K) {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.l1 {
            l1.invalidate(key).await;
        }
        self.flights.detach(key);
    }

    fn flush_local(&self) {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.l1 {
            l1.flush();
        }
        self.flights.detach_all();
    }

    async fn invalidate(&self, key: &K) -> Result<(), Error<L::Error>> {
        self.invalidate_local(key).await;
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            let result = l2.invalidate(key).await;
            // Again: a fill that started between the first local step and the
            // Redis step may have read the old value from Redis.
            self.invalidate_local(key).await;
            return result.map_err(Failure::into_error);
        }
        Ok(())
    }

    /// Runs the loader for one key, timing it.
    async fn load(&self, key: &K) -> Result<(Option<V>, u32), Error<L::Error>> {
        bump(&self.stats.loads);
        let started = Instant::now();
        match self.loader.load(key).await {
            Ok(value) => Ok((value, elapsed_ms(started))),
            Err(error) => {
                bump(&self.stats.load_errors);
                tracing::debug!(cache = %self.settings.name, %error, "loader failed");
                Err(Error::Load(Arc::new(error)))
            }
        }
    }

    /// The entry to store for a loaded answer, or `None` if it must not be
    /// cached (negative caching off, or a per-entry TTL of zero).
    fn entry_for(&self, key: &K, value: Option<V>, delta_ms: u32) -> Option<Entry<V>> {
        let ttl = match &value {
            Some(v) => self
                .entry_ttl
                .as_ref()
                .and_then(|f| f(key, v))
                .unwrap_or(self.settings.ttl),
            None => self.settings.negative_ttl?,
        };
        if ttl.is_zero() {
            return None;
        }
        let ttl = jittered(ttl, self.settings.jitter);
        Some(Entry {
            value,
            expires_at_ms: now_ms()
                .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            delta_ms,
        })
    }

    async fn miss(&self, key: &K) -> Outcome<V, L::Error> {
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
                    // In `Mode::Miss` the fill always has an answer, so the
                    // outer `None` ("nothing new") cannot occur.
                    let outcome = self
                        .fill(key, Mode::Miss)
                        .instrument(span)
                        .await
                        .map(Option::flatten);
                    leader.finish(&outcome);
                    return outcome;
                }
            }
        }
    }

    /// An early refresh of a value that L1 still holds. At most one runs per
    /// key in this process; everyone else keeps the current value.
    async fn refresh(&self, key: &K, current: Option<V>) -> Outcome<V, L::Error> {
        let Some(leader) = self.flights.try_lead(key) else {
            return Ok(current);
        };
        bump(&self.stats.early_refreshes);
        let span = tracing::debug_span!("cache_aside.refresh", cache = %self.settings.name);
        let outcome = match self.fill(key, Mode::Refresh).instrument(span).await {
            Ok(Some(fresh)) => Ok(fresh),
            // Busy elsewhere or failed: the current value is still valid.
            Ok(None) | Err(_) => Ok(current),
        };
        leader.finish(&outcome);
        outcome
    }

    /// Loads `key` through the lower tiers. In [`Mode::Refresh`], `Ok(None)`
    /// means "nothing new" (another instance is refreshing).
    async fn fill(&self, key: &K, mode: Mode) -> Result<Option<Option<V>>, Error<L::Error>> {
        let snap = self.l1_snapshot(key);
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            return self.fill_shared(l2, key, mode, snap).await;
        }
        let _ = mode;
        self.load_local(key, snap).await.map(Some)
    }

    /// Loads without the shared tier and stores in L1 only.
    async fn load_local(&self, key: &K, snap: Snap) -> Outcome<V, L::Error> {
        let (value, delta) = self.load(key).await?;
        match self.entry_for(key, value, delta) {
            Some(entry) => {
                self.l1_store(key, &entry, snap).await;
                Ok(entry.value)
            }
            None => Ok(None),
        }
    }
}

#[cfg(feature = "redis")]
impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    /// Redis failed (or is being bypassed): fail open or closed.
    async fn around_shared(
        &self,
        l2: &Shared<K, V>,
        key: &K,
        snap: Snap,
        failure: Failure,
    ) -> Outcome<V, L::Error> {
        match l2.fail_mode() {
            FailMode::Closed => Err(failure.into_error()),
            FailMode::Open => {
                bump(&self.stats.fail_open);
                self.load_local(key, snap).await
            }
        }
    }

    async fn fill_shared(
        &self,
        l2: &Shared<K, V>,
        key: &K,
        mode: Mode,
        snap: Snap,
    ) -> Result<Option<Option<V>>, Error<L::Error>> {
        if let Err(failure) = l2.check_available() {
            if mode == Mode::Refresh {
                return Ok(None);
            }
            return self.around_shared(l2, key, snap, failure).await.map(Some);
        }
        if mode == Mode::Miss {
            match l2.get(key).await {
                Ok(Lookup::Hit(entry)) => {
                    bump(&self.stats.l2_hits);
                    if entry.value.is_none() {
                        bump(&self.stats.negative_hits);
                    }
                    self.l1_store(key, &entry, snap).await;
                    let due = self.settings.early_refresh.is_some_and(|beta| {
                        should_refresh_early(beta, entry.delta_ms, entry.expires_at_ms, now_ms())
                    });
                    if !due {
                        return Ok(Some(entry.value));
                    }
                    bump(&self.stats.early_refreshes);
                    return match self.lease_and_load(l2, key, snap, true).await {
                        Ok(Some(fresh)) => Ok(Some(fresh)),
                        Ok(None) | Err(_) => Ok(Some(entry.value)),
                    };
                }
                Ok(Lookup::Miss) => bump(&self.stats.l2_misses),
                Err(failure) => return self.around_shared(l2, key, snap, failure).await.map(Some),
            }
        }
        self.lease_and_load(l2, key, snap, mode == Mode::Refresh)
            .await
    }

    /// Takes the fill lease and loads, or waits for the instance holding it.
    /// With `force` (early refresh), an existing value is ignored and a held
    /// lease means "someone else is on it": returns `Ok(None)`.
    async fn lease_and_load(
        &self,
        l2: &Shared<K, V>,
        key: &K,
        snap: Snap,
        force: bool,
    ) -> Result<Option<Option<V>>, Error<L::Error>> {
        let token = crate::shared::token();
        let deadline = Instant::now() + l2.lease_wait();
        let mut pause = crate::shared::FIRST_POLL;
        let mut waited = false;
        loop {
            let acquired = match l2.acquire(key, &token, force).await {
                Ok(acquired) => acquired,
                Err(_) if force => return Ok(None),
                Err(failure) => return self.around_shared(l2, key, snap, failure).await.map(Some),
            };
            match acquired {
                Acquire::Found(entry) => {
                    bump(&self.stats.l2_hits);
                    if entry.value.is_none() {
                        bump(&self.stats.negative_hits);
                    }
                    self.l1_store(key, &entry, snap).await;
                    return Ok(Some(entry.value));
                }
                Acquire::Acquired(generation) => {
                    return self
                        .load_and_fill(l2, key, snap, &generation, Some(&token))
                        .await
                        .map(Some);
                }
                Acquire::Held(_) if force => return Ok(None),
                Acquire::Held(generation) => {
                    if !waited {
                        waited = true;
                        bump(&self.stats.lease_waits);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        tracing::debug!(cache = %self.settings.name, "lease wait expired; loading without the lease");
                        return self
                            .load_and_fill(l2, key, snap, &generation, None)
                            .await
                            .map(Some);
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = crate::shared::next_poll(pause);
                }
            }
        }
    }

    /// Loads and stores in Redis only if the key's generation is still
    /// `generation`, then in L1 only if Redis accepted it (or could not be
    /// reached) and the local generation did not move either.
    async fn load_and_fill(
        &self,
        l2: &Shared<K, V>,
        key: &K,
        snap: Snap,
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
            Ok(stored) if stored.first() == Some(&true) => self.l1_store(key, &entry, snap).await,
            Ok(_) => {
                bump(&self.stats.stale_fills);
                tracing::debug!(cache = %self.settings.name, "key invalidated during the load; value not stored");
            }
            // Redis went away mid-fill: the value is fresh, keep it locally.
            Err(_) => self.l1_store(key, &entry, snap).await,
        }
        Ok(entry.value)
    }
}

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    async fn get_many(&self, keys: Vec<K>) -> Result<HashMap<K, V>, Error<L::Error>> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut seen = HashSet::with_capacity(keys.len());
        let mut pending = Vec::new();
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            #[cfg(feature = "moka")]
            if let Some(l1) = &self.l1 {
                if let Some(entry) = l1.get(&key).await {
                    bump(&self.stats.l1_hits);
                    match entry.value {
                        Some(value) => {
                            found.insert(key, value);
                        }
                        None => bump(&self.stats.negative_hits),
                    }
                    continue;
                }
                bump(&self.stats.l1_misses);
            }
            pending.push(key);
        }
        if pending.is_empty() {
            return Ok(found);
        }
        let snaps: Vec<Snap> = pending.iter().map(|k| self.l1_snapshot(k)).collect();

        // Indexes into `pending` still to load, with the Redis generation seen
        // (None: Redis not used for this batch).
        let mut missing: Vec<(usize, Option<String>)> = Vec::new();
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            let lookups = match l2.check_available() {
                Ok(()) => l2.get_many(&pending).await,
                Err(failure) => Err(failure),
            };
            match lookups {
                Ok(rows) => {
                    for (i, (lookup, generation)) in rows.into_iter().enumerate() {
                        match lookup {
                            Lookup::Hit(entry) => {
                                bump(&self.stats.l2_hits);
                                self.l1_store(&pending[i], &entry, snaps[i]).await;
                                match entry.value {
                                    Some(value) => {
                                        found.insert(pending[i].clone(), value);
                                    }
                                    None => bump(&self.stats.negative_hits),
                                }
                            }
                            Lookup::Miss => {
                                bump(&self.stats.l2_misses);
                                missing.push((i, Some(generation)));
                            }
                        }
                    }
                }
                Err(failure) => {
                    if l2.fail_mode() == FailMode::Closed {
                        return Err(failure.into_error());
                    }
                    bump(&self.stats.fail_open);
                    missing.extend((0..pending.len()).map(|i| (i, None)));
                }
            }
        } else {
            missing.extend((0..pending.len()).map(|i| (i, None)));
        }
        #[cfg(not(feature = "redis"))]
        missing.extend((0..pending.len()).map(|i| (i, None)));

        if missing.is_empty() {
            return Ok(found);
        }

        let to_load: Vec<K> = missing.iter().map(|(i, _)| pending[*i].clone()).collect();
        bump(&self.stats.loads);
        let started = Instant::now();
        let mut loaded = match self.loader.load_many(&to_load).await {
            Ok(loaded) => loaded,
            Err(error) => {
                bump(&self.stats.load_errors);
                tracing::debug!(cache = %self.settings.name, %error, "batch loader failed");
                return Err(Error::Load(Arc::new(error)));
            }
        };
        let delta = elapsed_ms(started);
        let entries: Vec<(usize, Option<String>, Option<Entry<V>>)> = missing
            .into_iter()
            .map(|(i, generation)| {
                let value = loaded.remove(&pending[i]);
                (i, generation, self.entry_for(&pending[i], value, delta))
            })
            .collect();

        // Whether each entry may go to L1: Redis must not have refused it.
        let mut keep = vec![true; entries.len()];
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            let mut items = Vec::new();
            let mut positions = Vec::new();
            for (n, (i, generation, entry)) in entries.iter().enumerate() {
                if let (Some(generation), Some(entry)) = (generation, entry) {
                    items.push((&pending[*i], entry, generation.as_str()));
                    positions.push(n);
                }
            }
            if !items.is_empty()
                && let Ok(stored) = l2.fill(&items, None).await
            {
                for (n, ok) in positions.into_iter().zip(stored) {
                    if !ok {
                        keep[n] = false;
                        bump(&self.stats.stale_fills);
                    }
                }
            }
        }

        for ((i, _, entry), keep) in entries.into_iter().zip(keep) {
            let Some(entry) = entry else { continue };
            if keep {
                self.l1_store(&pending[i], &entry, snaps[i]).await;
            }
            if let Some(value) = entry.value {
                found.insert(pending[i].clone(), value);
            }
        }
        Ok(found)
    }
}

#[cfg(feature = "redis")]
impl<K, V, L> crate::shared::Listener for Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    type Key = K;
    type Value = V;

    fn shared(&self) -> &Shared<K, V> {
        self.l2
            .as_ref()
            .expect("the listener only runs for caches with a shared tier")
    }

    fn on_subscribed(&self) {
        // Invalidations published while we were not listening are lost.
        bump(&self.stats.l1_flushes);
        self.flush_local();
    }

    async fn on_message(&self, payload: &[u8]) {
        bump(&self.stats.invalidations_received);
        let key = if payload.is_empty() {
            None
        } else {
            self.shared().decode_key(payload)
        };
        match key {
            Some(key) => self.invalidate_local(&key).await,
            None => {
                bump(&self.stats.l1_flushes);
                self.flush_local();
            }
        }
    }
}

fn elapsed_ms(started: Instant) -> u32 {
    // Rounded up, so any measurable load has a non-zero delta.
    u32::try_from(started.elapsed().as_micros().div_ceil(1000)).unwrap_or(u32::MAX)
}
