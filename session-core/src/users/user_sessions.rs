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
//!
//! During a migration out of a server-side store (`previous`), the same
//! rules hold over the two stores:
//!
//! - log-ins are indexed in the new store (in phase 1, in the old one too)
//!   before their record is written, wherever it is written; a bound
//!   session moving into the new store is added to the new store's index
//!   before its copy is written there ([`index_moving`]), so once the
//!   migration is over the new store's index names every session that
//!   moved;
//! - listing reads both indexes (each session once) and looks each session
//!   up in the new store, then the old one; a *moved* marker found there
//!   stands for a session whose move is under way, and is live;
//! - revoking deletes the old store's record (or marker) first, then the
//!   new store's, as a log-out does (a move that finds its marker gone
//!   withdraws its copy), then drops the entry from both indexes.

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
/// During a [migration](crate::Migration) out of a server-side store, the
/// sessions of both stores are listed and revoked, whichever store holds
/// them and whichever store's index names them; see
/// `docs/store-migration.md`. Out of sealed cookies, a session still kept
/// in its cookie cannot be listed or revoked (as with the cookie store)
/// until it has moved into the new store.
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
///
/// # Guarantees
///
/// Each user has an index in the store naming the sessions bound to them.
/// No store is asked for atomic writes across keys; the order of writes
/// carries the guarantees instead:
///
/// - a session enters its user's index **before** its record is written
///   bound to the user, and a bound session's new ID from
///   [`Session::cycle_id`](crate::Session::cycle_id) before it is written;
/// - revoking deletes the session's record **first**, then its entry;
///   listing loads every indexed session and drops the entries of those
///   that have ended (expired, destroyed, revoked or bound to someone
///   else).
///
/// So a session whose log-in was acknowledged before a revocation began is
/// in the index that revocation reads, and is ended: its next request, on
/// any instance, is anonymous. A rotation of its ID racing the revocation
/// is caught too (the rotation gives up when the old record vanished
/// meanwhile, and the revocation repeats its pass while it finds sessions
/// created before it began). On Redis Cluster this means an index and its
/// sessions need not share a hash slot, and need no multi-key script: each
/// key changes atomically on its own.
///
/// # Bounds
///
/// - Entries are trimmed whenever the index is written, once past the
///   session's absolute lifetime
///   ([`with_absolute_lifetime`](crate::SessionLayer::with_absolute_lifetime)).
///   Idle expiry never trims an entry: any request can extend it, and a
///   live session missing from the index would escape revocation. With an
///   absolute lifetime, an index also expires by itself once all its
///   sessions have. Without one, listings and log-ins drop ended entries,
///   and the index of a user who never comes back stays in the store (at
///   most the cap below of entries, all ended) until the store is
///   cleared: set an absolute lifetime where that matters.
/// - Each user has at most
///   [`with_max_sessions_per_user`](crate::SessionLayer::with_max_sessions_per_user)
///   live sessions (100 by default): a log-in beyond that revokes the
///   user's oldest sessions (by creation time), never the one logging in.
#[derive(Clone)]
pub struct UserSessions {
    store: Option<Arc<dyn SessionStore>>,
    /// The server-side store a migration moves sessions out of.
    previous: Option<Previous>,
    config: Arc<Config>,
}

/// The server-side store a migration moves sessions out of: its records
/// are looked up and deleted, and its index (if it keeps any) read and
/// pruned, along with the layer's store.
#[derive(Clone)]
struct Previous {
    store: Arc<dyn SessionStore>,
    /// Whether entries are added to its index too (phase 1, whose
    /// sessions stay in the old store: instances of the old
    /// configuration, and a rollback to it, list and revoke from there).
    adds: bool,
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
        UserSessions {
            store,
            previous: None,
            config,
        }
    }

    /// The same, during a migration out of the server-side store `old`;
    /// `adds`: entries are added to its index as well as to the layer's
    /// store's.
    pub(crate) fn with_previous(mut self, old: Arc<dyn SessionStore>, adds: bool) -> Self {
        self.previous = Some(Previous { store: old, adds });
        self
    }

    /// The index of the store being left, if there is one and it keeps
    /// indexes.
    fn previous_index(&self) -> Option<&Previous> {
        self.previous
            .as_ref()
            .filter(|p| p.store.supports_user_index())
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
        let mut entries = load(store, &self.config, user).await?;
        if let Some(previous) = self.previous_index() {
            // Either index may name a session (or both): each once, all
            // oldest first.
            for entry in load(&*previous.store, &self.config, user).await?.0 {
                if !entries.0.iter().any(|e| e.id == entry.id) {
                    entries.0.push(entry);
                }
            }
            entries.0.sort_by_key(|e| e.created_at);
        }
        let now = now();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for entry in entries.0 {
            let record = self.find(store, &entry.id).await?;
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

    /// The record of the session `id`: from the layer's store or, during a
    /// migration, the store being left (where it may be a *moved* marker,
    /// which carries the session while it moves).
    async fn find(&self, store: &dyn SessionStore, id: &Id) -> Result<Option<Record>> {
        let record = call(&self.config, "load", store.load(id)).await?;
        match (record, &self.previous) {
            (None, Some(previous)) => call(&self.config, "load", previous.store.load(id)).await,
            (record, _) => Ok(record),
        }
    }

    /// Adds `entry` to the index of `user` (during phase 1 of a migration,
    /// to the old store's index too); returns how many entries the user's
    /// indexes hold now (counting twice a session both name).
    pub(crate) async fn add(&self, user: &str, entry: Entry) -> Result<usize> {
        let store = self.store("bind a session to a user")?;
        let mut entries = add(store, &self.config, user, &entry).await?;
        if let Some(previous) = self.previous_index() {
            entries += if previous.adds {
                add(&*previous.store, &self.config, user, &entry).await?
            } else {
                load(&*previous.store, &self.config, user).await?.0.len()
            };
        }
        Ok(entries)
    }

    /// Drops the entries of `ids` from the index of `user` (during a
    /// migration, from both stores' indexes).
    pub(crate) async fn remove(&self, user: &str, ids: &[Id]) -> Result<()> {
        let store = self.store("unbind a session")?;
        let drop_ids = |entries: &mut Entries| entries.remove(ids);
        modify(store, &self.config, user, drop_ids).await?;
        if let Some(previous) = self.previous_index() {
            modify(&*previous.store, &self.config, user, drop_ids).await?;
        }
        Ok(())
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
        entry(&self.config, record, handle)
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
    /// `keep`, if `entries` (the size of the user's index) exceeds it.
    pub(crate) async fn enforce_cap(&self, user: &str, keep: &Id, entries: usize) -> Result<()> {
        let cap = self.config.max_sessions_per_user;
        if entries <= cap {
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
    /// During a migration the old store's record goes first, as on
    /// log-out: a move that finds its marker gone withdraws its copy.
    async fn delete(&self, user: &str, victims: &[Live]) -> Result<usize> {
        let store = self.store("revoke a session")?;
        for victim in victims {
            let id = &victim.record.id;
            if let Some(previous) = &self.previous {
                call(&self.config, "delete", previous.store.delete(id)).await?;
            }
            call(&self.config, "delete", store.delete(id)).await?;
        }
        let ids: Vec<Id> = victims.iter().map(|v| v.record.id.clone()).collect();
        self.remove(user, &ids).await?;
        Ok(victims.len())
    }
}

/// Adds the bound `record`, about to be written into `store` as a session
/// moves there during a migration, to its user's index in `store`: there
/// too a bound record is indexed before it is written. Nothing to do for
/// a record bound to nobody, or a store without indexes.
pub(crate) async fn index_moving(
    store: &dyn SessionStore,
    config: &Config,
    record: &Record,
) -> Result<()> {
    let Some(binding) = &record.binding else {
        return Ok(());
    };
    if !store.supports_user_index() {
        return Ok(());
    }
    let entry = entry(config, record, &binding.handle);
    add(store, config, &binding.user, &entry).await.map(drop)
}

/// An index entry for `record`, bound with `handle`.
fn entry(config: &Config, record: &Record, handle: &SessionHandle) -> Entry {
    Entry {
        id: record.id.clone(),
        handle: handle.clone(),
        created_at: record.created_at,
        until: config.absolute_lifetime.map(|d| record.created_at + d),
    }
}

/// The entries of the index of `user` in `store`.
async fn load(store: &dyn SessionStore, config: &Config, user: &str) -> Result<Entries> {
    match call(config, "load_user_index", store.load_user_index(user)).await? {
        Some(index) => Ok(Entries::decode(&index)?),
        None => Ok(Entries::default()),
    }
}

/// Adds `entry` to the index of `user` in `store`; returns how many
/// entries that index holds now.
async fn add(
    store: &dyn SessionStore,
    config: &Config,
    user: &str,
    entry: &Entry,
) -> Result<usize> {
    modify(store, config, user, |entries| entries.upsert(entry.clone())).await
}

/// Read-modify-write of the index of `user` in `store`, compare-and-set on
/// its version, re-run on fresh data when a concurrent change won. Trims
/// ended entries and deletes the index once it is empty; writes nothing
/// when nothing changed. Returns how many entries are left.
async fn modify(
    store: &dyn SessionStore,
    config: &Config,
    user: &str,
    mut change: impl FnMut(&mut Entries),
) -> Result<usize> {
    let max = config.max_attempts.max(1);
    for attempt in 1..=max {
        let started = std::time::Instant::now();
        let stored = call(config, "load_user_index", store.load_user_index(user)).await?;
        let mut entries = match &stored {
            Some(index) => Entries::decode(index)?,
            None => Entries::default(),
        };
        let before = entries.clone();
        change(&mut entries);
        entries.trim(now());
        let written = match (&stored, entries.0.is_empty()) {
            (None, true) => true,
            // Already as wanted (an entry dropped from the index that did
            // not hold it, say).
            (Some(_), false) if entries == before => true,
            (Some(old), true) => {
                call(
                    config,
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
                    config,
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

impl fmt::Debug for UserSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSessions")
            .field("store", &self.store)
            .field("previous", &self.previous.as_ref().map(|p| &p.store))
            .field("supported", &self.supported())
            .finish()
    }
}
