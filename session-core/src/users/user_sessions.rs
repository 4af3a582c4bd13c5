//! `UserSessions`: the per-user index and every rule about it, written
//! once over the three index primitives of [`SessionStore`].
//!
//! The store offers no atomicity across keys, so the order of writes
//! carries the guarantees:
//!
//! - a session is added to its user's index **before** its record is
//!   written bound to the user (and before a new ID of a bound session is
//!   written), so every bound record that exists is findable;
//! - revoking deletes the record **first**, then drops the index entry;
//! - listing loads each indexed session and drops the entries whose
//!   session has ended (expired, destroyed, revoked, or bound elsewhere).
//!
//! Hence a log-in acknowledged before a revoke-all began is in the index
//! the revoke reads, and its session is deleted. A revoke-all repeats its
//! pass until a pass finds nothing left to revoke, which catches a session
//! whose ID was being rotated meanwhile: the rotation checks that the old
//! record still exists after writing the new one, and deletes the new one
//! if not (see `Server::replace`).

use std::fmt;
use std::sync::Arc;

use super::entries::{Entries, Entry};
use super::{SessionHandle, SessionInfo};
use crate::config::Config;
use crate::persistence::call;
use crate::store::{Binding, Record, SessionStore, UserIndex, now};
use crate::{Error, Id, Result};

/// How many passes a revocation makes at most while each pass still finds
/// sessions to revoke (sessions rotating their ID meanwhile).
const MAX_REVOKE_PASSES: usize = 16;

/// Lists and revokes the sessions of any user, outside of a request: for
/// admin tools, or a password reset confirmed by e-mail. Get one from
/// [`SessionLayer::user_sessions`](crate::SessionLayer::user_sessions);
/// inside a request, the [`Session`](crate::Session) methods do the same
/// for the session's own user.
///
/// Sessions appear here once bound to their user by
/// [`Session::bind_user`](crate::Session::bind_user). With a client-side
/// store (sessions sealed in their cookies) or a store without index
/// support every method fails with [`Error::Unsupported`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// use session_core::SessionLayer;
/// use session_stores::MemoryStore;
///
/// let layer = SessionLayer::new(MemoryStore::default());
/// let users = layer.user_sessions();
/// assert!(users.list("alice").await?.is_empty());
/// assert_eq!(users.revoke_all("alice").await?, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UserSessions {
    store: Option<Arc<dyn SessionStore>>,
    config: Arc<Config>,
}

/// A bound session found alive through its index entry.
pub(crate) struct Live {
    pub(crate) entry: Entry,
    pub(crate) record: Record,
}

impl Live {
    fn binding(&self) -> &Binding {
        // `live` keeps only records bound as their entry says.
        self.record
            .binding
            .as_ref()
            .expect("live sessions are bound")
    }

    /// How listings show it.
    pub(crate) fn info(&self, config: &Config, current: bool) -> SessionInfo {
        let binding = self.binding();
        // Extending the idle expiry proves a request at `expires_at - idle`
        // at the latest (earlier when the absolute lifetime capped it), so
        // this never claims a later visit than there was.
        let touched = match (config.idle_timeout, self.record.expires_at) {
            (Some(idle), Some(at)) => Some(at - idle),
            _ => None,
        };
        let last_seen = touched
            .filter(|t| *t <= now())
            .map_or(binding.last_seen, |t| t.max(binding.last_seen));
        SessionInfo {
            handle: binding.handle.clone(),
            created_at: self.record.created_at,
            last_seen,
            device: binding.device.clone(),
            current,
        }
    }
}

impl UserSessions {
    pub(crate) fn new(store: Option<Arc<dyn SessionStore>>, config: Arc<Config>) -> Self {
        UserSessions { store, config }
    }

    /// Whether the store keeps per-user indexes.
    pub(crate) fn supported(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.supports_user_index())
    }

    /// The live sessions of `user`, oldest first, each with `current`
    /// `false`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] with a store that has no index; a store
    /// failure.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>> {
        Ok(self
            .live(user, "list user sessions")
            .await?
            .iter()
            .map(|live| live.info(&self.config, false))
            .collect())
    }

    /// Ends the session of `user` named `handle`; `Ok(false)` if no live
    /// session of this user has that handle. Its next request, on any
    /// instance, is anonymous.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub async fn revoke(&self, user: &str, handle: &SessionHandle) -> Result<bool> {
        let revoked = self
            .revoke_where(user, "revoke a session", |b| &b.handle == handle)
            .await?;
        Ok(revoked > 0)
    }

    /// Ends every session of `user`; returns how many were ended. A
    /// session whose log-in was acknowledged before this call began is
    /// ended, even while other log-ins of the user race with it.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub async fn revoke_all(&self, user: &str) -> Result<usize> {
        self.revoke_where(user, "revoke all sessions", |_| true)
            .await
    }

    fn store(&self, operation: &'static str) -> Result<&dyn SessionStore> {
        match &self.store {
            Some(store) if store.supports_user_index() => Ok(&**store),
            _ => Err(Error::Unsupported { operation }),
        }
    }

    /// The live sessions of `user`, oldest first; drops the entries of
    /// sessions that have ended.
    pub(crate) async fn live(&self, user: &str, operation: &'static str) -> Result<Vec<Live>> {
        let store = self.store(operation)?;
        let Some(index) =
            call(&self.config, "load_user_index", store.load_user_index(user)).await?
        else {
            return Ok(Vec::new());
        };
        let entries = Entries::decode(&index)?;
        let now = now();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for entry in entries.0 {
            let record = call(&self.config, "load", store.load(&entry.id)).await?;
            match record {
                Some(record)
                    if self.config.is_live(&record, now)
                        && record
                            .binding
                            .as_ref()
                            .is_some_and(|b| b.user == user && b.handle == entry.handle) =>
                {
                    live.push(Live { entry, record });
                }
                _ => dead.push(entry.id),
            }
        }
        if !dead.is_empty()
            && let Err(e) = self.remove(user, &dead).await
        {
            tracing::warn!(error = %e, "could not drop ended sessions from a user index");
        }
        Ok(live)
    }

    /// Adds `entry` to the index of `user`.
    pub(crate) async fn add(&self, user: &str, entry: Entry) -> Result<()> {
        self.modify(user, "bind a session to a user", |entries| {
            entries.upsert(entry.clone())
        })
        .await
        .map(drop)
    }

    /// Drops the entries of `ids` from the index of `user`.
    pub(crate) async fn remove(&self, user: &str, ids: &[Id]) -> Result<()> {
        self.modify(user, "unbind a session", |entries| entries.remove(ids))
            .await
            .map(drop)
    }

    /// [`remove`](Self::remove), for cleanup that may fail: an entry left
    /// behind is dropped by the next listing that finds its session gone.
    pub(crate) async fn forget(&self, user: &str, ids: &[Id]) {
        if let Err(e) = self.remove(user, ids).await {
            tracing::warn!(error = %e, "could not drop a session from its user's index");
        }
    }

    /// An index entry for `record`, bound with `handle`.
    pub(crate) fn entry(&self, record: &Record, handle: &SessionHandle) -> Entry {
        Entry {
            id: record.id.clone(),
            handle: handle.clone(),
            created_at: record.created_at,
            until: self.config.absolute_lifetime.map(|d| record.created_at + d),
        }
    }

    /// Deletes the live sessions of `user` that `pick` selects, record
    /// first, then index entry; returns how many were deleted.
    ///
    /// The first pass takes every session `pick` selects. Passes repeat
    /// while one still finds sessions created before the revocation
    /// began: a session whose ID was being rotated during a pass shows up
    /// under its new ID (which keeps its creation time) in the next.
    /// Sessions logging in after the revocation began end the passes, so
    /// a steady stream of log-ins cannot keep it going.
    pub(crate) async fn revoke_where(
        &self,
        user: &str,
        operation: &'static str,
        pick: impl Fn(&Binding) -> bool,
    ) -> Result<usize> {
        let began = now();
        let mut revoked = 0;
        for pass in 0..MAX_REVOKE_PASSES {
            let victims: Vec<Live> = self
                .live(user, operation)
                .await?
                .into_iter()
                .filter(|live| {
                    pick(live.binding()) && (pass == 0 || live.record.created_at <= began)
                })
                .collect();
            if victims.is_empty() {
                break;
            }
            revoked += self.delete(user, &victims).await?;
        }
        Ok(revoked)
    }

    /// Revokes the oldest sessions of `user` beyond the layer's cap, never
    /// `keep`.
    pub(crate) async fn enforce_cap(&self, user: &str, keep: &Id) -> Result<()> {
        let cap = self.config.max_sessions_per_user;
        let store = self.store("bind a session to a user")?;
        let Some(index) =
            call(&self.config, "load_user_index", store.load_user_index(user)).await?
        else {
            return Ok(());
        };
        if Entries::decode(&index)?.0.len() <= cap {
            return Ok(());
        }
        let live = self.live(user, "bind a session to a user").await?;
        let excess = live.len().saturating_sub(cap);
        // Oldest first.
        let victims: Vec<Live> = live
            .into_iter()
            .filter(|l| &l.record.id != keep)
            .take(excess)
            .collect();
        if !victims.is_empty() {
            tracing::info!(
                count = victims.len(),
                cap,
                "user has more sessions than allowed: revoking the oldest"
            );
            self.delete(user, &victims).await?;
        }
        Ok(())
    }

    /// Deletes each session of `victims`, then drops them from the index.
    async fn delete(&self, user: &str, victims: &[Live]) -> Result<usize> {
        let store = self.store("revoke a session")?;
        for victim in victims {
            call(&self.config, "delete", store.delete(&victim.record.id)).await?;
        }
        let ids: Vec<Id> = victims.iter().map(|v| v.record.id.clone()).collect();
        self.remove(user, &ids).await?;
        Ok(victims.len())
    }

    /// Read-modify-write of the index of `user`, compare-and-set on its
    /// version, re-run on fresh data when a concurrent change won. Trims
    /// ended entries and deletes the index once it is empty. Returns how
    /// many entries are left.
    async fn modify(
        &self,
        user: &str,
        operation: &'static str,
        mut change: impl FnMut(&mut Entries),
    ) -> Result<usize> {
        let store = self.store(operation)?;
        let max = self.config.max_attempts.max(1);
        for attempt in 1..=max {
            let started = std::time::Instant::now();
            let stored = call(&self.config, "load_user_index", store.load_user_index(user)).await?;
            let mut entries = match &stored {
                Some(index) => Entries::decode(index)?,
                None => Entries::default(),
            };
            change(&mut entries);
            entries.trim(now());
            let written = match (&stored, entries.0.is_empty()) {
                (None, true) => true,
                (Some(old), true) => {
                    call(
                        &self.config,
                        "delete_user_index",
                        store.delete_user_index(user, old.version),
                    )
                    .await?
                }
                (old, false) => {
                    let index = UserIndex::new(
                        old.as_ref().map_or(1, |o| o.version + 1),
                        entries.expires_at(),
                        entries.encode()?,
                    );
                    call(
                        &self.config,
                        "save_user_index",
                        store.save_user_index(user, &index, old.as_ref().map(|o| o.version)),
                    )
                    .await?
                }
            };
            if written {
                return Ok(entries.0.len());
            }
            if attempt < max {
                crate::session::backoff(attempt, started.elapsed()).await;
            }
        }
        Err(Error::Conflict { attempts: max })
    }
}

impl fmt::Debug for UserSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSessions")
            .field("store", &self.store)
            .field("supported", &self.supported())
            .finish()
    }
}
