//! The in-process store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::Op;
use session_core::store::{Record, UserIndex, now};
use session_core::{Id, Result, SessionStore};
use time::OffsetDateTime;

/// Sessions in this process's memory, on a bounded moka cache that evicts
/// records when they expire (and the least used ones when full).
///
/// Saves are compare-and-set on the version, atomic per key, so concurrent
/// requests on this instance never lose updates. The data is gone when the
/// process exits and is not shared with other instances: use it for a
/// single instance, development and tests.
///
/// Clones share the same sessions.
///
/// It keeps the per-user session index too (listing and revoking a user's
/// sessions), one entry per user beside the sessions, with the same
/// per-key atomicity.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    cache: Cache<Id, Arc<Record>>,
    indexes: Cache<String, Arc<UserIndex>>,
}

impl Default for MemoryStore {
    /// A store holding up to 100 000 sessions.
    fn default() -> Self {
        MemoryStore::builder().build()
    }
}

impl MemoryStore {
    /// Settings for a new store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_sessions: 100_000,
        }
    }

    /// Number of sessions held (approximate; expired records may still be
    /// counted until the cache runs its maintenance).
    pub fn len(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Whether no session is held (approximate, like [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds a [`MemoryStore`].
#[derive(Clone, Debug)]
pub struct MemoryStoreBuilder {
    max_sessions: u64,
}

impl MemoryStoreBuilder {
    /// The most sessions kept at once (default 100 000); beyond it the least
    /// recently used ones are evicted.
    pub fn with_max_sessions(mut self, max: u64) -> Self {
        self.max_sessions = max;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            cache: Cache::builder()
                .max_capacity(self.max_sessions)
                .expire_after(ExpireAtRecordTime)
                .build(),
            // Never evicted for room: a lost index would hide live
            // sessions from revocation. Each index ends with its
            // sessions, and there are at most as many as sessions.
            indexes: Cache::builder().expire_after(ExpireAtRecordTime).build(),
        }
    }
}

/// Each entry lives until its record's (or index's) `expires_at`.
struct ExpireAtRecordTime;

/// What expires: a record or a user index.
trait ExpiresAt {
    fn expires_at(&self) -> Option<OffsetDateTime>;
}

impl ExpiresAt for Record {
    fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }
}

impl ExpiresAt for UserIndex {
    fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }
}

fn remaining(entry: &impl ExpiresAt) -> Option<Duration> {
    entry
        .expires_at()
        .map(|at| Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or_default())
}

impl<K, V: ExpiresAt> moka::Expiry<K, Arc<V>> for ExpireAtRecordTime {
    fn expire_after_create(&self, _: &K, entry: &Arc<V>, _: Instant) -> Option<Duration> {
        remaining(&**entry)
    }

    fn expire_after_update(
        &self,
        _: &K,
        entry: &Arc<V>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        remaining(&**entry)
    }
}

fn live<V: ExpiresAt>(entry: Option<&Arc<V>>) -> Option<&Arc<V>> {
    let now = now();
    entry.filter(|e| e.expires_at().is_none_or(|at| at > now))
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            let candidate = Arc::new(record.clone());
            let inserted = self
                .cache
                .entry(record.id.clone())
                .and_compute_with(|existing| {
                    let op = match live(existing.as_ref().map(|e| e.value())) {
                        Some(_) => Op::Nop,
                        None => Op::Put(candidate),
                    };
                    std::future::ready(op)
                })
                .await;
            if matches!(
                inserted,
                moka::ops::compute::CompResult::Inserted(_)
                    | moka::ops::compute::CompResult::ReplacedWith(_)
            ) {
                return Ok(());
            }
            record.id = Id::random();
        }
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let record = self.cache.get(id).await;
        Ok(live(record.as_ref()).map(|r| Record::clone(r)))
    }

    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        let candidate = Arc::new(record.clone());
        let result = self
            .cache
            .entry(record.id.clone())
            .and_compute_with(|existing| {
                let op = match live(existing.as_ref().map(|e| e.value())) {
                    Some(current) if current.version == expected_version => Op::Put(candidate),
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        Ok(matches!(
            result,
            moka::ops::compute::CompResult::ReplacedWith(_)
        ))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.cache.invalidate(id).await;
        Ok(())
    }

    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        let result = self
            .cache
            .entry(id.clone())
            .and_compute_with(|existing| {
                let op = match live(existing.as_ref().map(|e| e.value())) {
                    Some(current) => {
                        let mut record = Record::clone(current);
                        record.expires_at = expires_at;
                        Op::Put(Arc::new(record))
                    }
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        Ok(matches!(
            result,
            moka::ops::compute::CompResult::ReplacedWith(_)
        ))
    }

    fn supports_user_index(&self) -> bool {
        true
    }

    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        let index = self.indexes.get(user).await;
        Ok(live(index.as_ref()).map(|i| UserIndex::clone(i)))
    }

    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        let candidate = Arc::new(index.clone());
        let result = self
            .indexes
            .entry(user.to_owned())
            .and_compute_with(|existing| {
                let current = live(existing.as_ref().map(|e| e.value())).map(|i| i.version);
                std::future::ready(if current == expected_version {
                    Op::Put(candidate)
                } else {
                    Op::Nop
                })
            })
            .await;
        Ok(matches!(
            result,
            moka::ops::compute::CompResult::Inserted(_)
                | moka::ops::compute::CompResult::ReplacedWith(_)
        ))
    }

    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        let result = self
            .indexes
            .entry(user.to_owned())
            .and_compute_with(|existing| {
                let current = live(existing.as_ref().map(|e| e.value())).map(|i| i.version);
                std::future::ready(if current == Some(expected_version) {
                    Op::Remove
                } else {
                    Op::Nop
                })
            })
            .await;
        Ok(matches!(result, moka::ops::compute::CompResult::Removed(_)))
    }
}
