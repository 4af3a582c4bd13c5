//! The in-process store.

mod table;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::Op;
use session_core::store::{Record, UserIndex, now, unix_millis};
use session_core::{Id, Result, SessionStore};
use time::OffsetDateTime;

use table::{Stored, Table};

/// Sessions in this process's memory: a sharded map of encoded records,
/// bounded, expiring.
///
/// Saves are compare-and-set on the version, atomic per key, so concurrent
/// requests on this instance never lose updates. The data is gone when the
/// process exits and is not shared with other instances: use it for a
/// single instance, development and tests.
///
/// Each session is kept as its encoded record (the bytes a server-side
/// store would write), which costs little more memory than those bytes;
/// a load decodes it, which copies each value's bytes and decodes none.
/// An expired session is never returned; writes sweep the expired ones
/// out, a thirty-second part of the store each second. When the store
/// holds [`with_max_sessions`](MemoryStoreBuilder::with_max_sessions)
/// sessions, a new one evicts the one nearest to expiry in its part of the
/// store: with an idle timeout, the least recently used.
///
/// Clones share the same sessions.
///
/// It keeps the per-user session index too (listing and revoking a user's
/// sessions), one entry per user beside the sessions, with the same
/// per-key atomicity.
#[derive(Clone)]
pub struct MemoryStore {
    sessions: Arc<Table>,
    indexes: Cache<String, Arc<UserIndex>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.sessions.len())
            .field("user_indexes", &self.indexes.entry_count())
            .finish()
    }
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

    /// Number of sessions held (approximate: expired records are counted
    /// until they are swept out).
    pub fn len(&self) -> u64 {
        self.sessions.len()
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
    /// About the most sessions kept at once (default 100 000); beyond it a
    /// new session evicts the one nearest to expiry in its part (one of
    /// 32) of the store, so the store may hold up to 31 more.
    pub fn with_max_sessions(mut self, max: u64) -> Self {
        self.max_sessions = max;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            sessions: Arc::new(Table::new(self.max_sessions)),
            // Never evicted for room: a lost index would hide live
            // sessions from revocation. Each index ends with its
            // sessions, and there are at most as many as sessions.
            indexes: Cache::builder().expire_after(ExpireAtIndexTime).build(),
        }
    }
}

/// Each user index lives until its `expires_at`.
struct ExpireAtIndexTime;

fn remaining(index: &UserIndex) -> Option<Duration> {
    index
        .expires_at
        .map(|at| Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or_default())
}

impl moka::Expiry<String, Arc<UserIndex>> for ExpireAtIndexTime {
    fn expire_after_create(
        &self,
        _: &String,
        index: &Arc<UserIndex>,
        _: Instant,
    ) -> Option<Duration> {
        remaining(index)
    }

    fn expire_after_update(
        &self,
        _: &String,
        index: &Arc<UserIndex>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        remaining(index)
    }
}

fn live(index: Option<&Arc<UserIndex>>) -> Option<&Arc<UserIndex>> {
    let now = now();
    index.filter(|i| i.expires_at.is_none_or(|at| at > now))
}

/// `record` as the store keeps it.
fn stored(record: &Record) -> Result<Stored> {
    Ok(Stored {
        version: record.version,
        expires_ms: record.expires_at.map(unix_millis),
        encoded: record.encode()?.into(),
    })
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let new = stored(record)?;
        let now_ms = unix_millis(now());
        while !self.sessions.update(&record.id, now_ms, |current| {
            current.is_none().then(|| new.clone())
        }) {
            record.id = Id::random();
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(found) = self.sessions.get(id, unix_millis(now())) else {
            return Ok(None);
        };
        let version = i64::try_from(found.version).unwrap_or(i64::MAX);
        let record =
            Record::decode_with_metadata(id.clone(), &found.encoded, version, found.expires_ms)?;
        Ok(Some(record))
    }

    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        let new = stored(record)?;
        Ok(self
            .sessions
            .update(&record.id, unix_millis(now()), |current| {
                current
                    .is_some_and(|c| c.version == expected_version)
                    .then_some(new)
            }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.sessions.remove(id);
        Ok(())
    }

    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        Ok(self.sessions.update(id, unix_millis(now()), |current| {
            current.map(|c| Stored {
                expires_ms: expires_at.map(unix_millis),
                ..c.clone()
            })
        }))
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
