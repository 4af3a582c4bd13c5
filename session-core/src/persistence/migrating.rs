//! Sessions during a move from one store to another: the layer's store
//! (`new`) is read first, then the store being left (`old`). The phases
//! and the reasoning are in [`crate::migration`]; this is how they work.
//!
//! Invariants that keep every session in exactly one place:
//!
//! - A session moves out of a server-side store only by a compare-and-set
//!   that turns its record, at version `v`, into a *moved* marker at
//!   `v + 1` carrying the same data. The copy in the new store is written
//!   after that, at `v + 2`. So while the copy exists the old store holds
//!   only the marker (or nothing, once it expired with the session), and
//!   no writer ever holds the marker's version.
//! - Every write goes where its session was found ([`Origin`]); a writer
//!   that loaded the old copy before the move fails its compare-and-set on
//!   the marker, reloads, and finds the copy in the new store.
//! - A marker is never served: whoever reads one completes the move
//!   (creating the copy unless it exists) and uses the copy.
//! - Log-out deletes from the old store first and the new one second; a
//!   move checks after creating its copy that its marker is still there,
//!   and withdraws the copy otherwise, so a log-out racing a move wins.
//! - A session bound to a user is added to the user's index in the new
//!   store before its copy is written there, as on log-in; listing and
//!   revoking a user's sessions read both stores (see
//!   [`UserSessions`]), and revoke like a log-out, old store first.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Client, CookieChange, Incoming, Loaded, Origin, Persistence, Server, Write};
use crate::config::Config;
use crate::metrics;
use crate::migration::{Migration, MigrationPhase, Source};
use crate::store::{Data, Record, SessionStore, Value};
use crate::users::{UserSessions, index_moving};
use crate::{Error, Id, Result};

/// The data key that makes a record in the old store a *moved* marker.
/// It starts with a NUL, which no form field or app constant uses.
const MOVED: &str = "\u{0}session-core:moved";

/// Two stores, read new first, during a migration.
#[derive(Debug)]
pub(crate) struct Migrating {
    new: Server,
    old: Old,
    phase: MigrationPhase,
}

/// The store being left.
#[derive(Debug)]
enum Old {
    /// A server-side store: sessions move under their ID.
    Store(Server),
    /// Sealed cookies: sessions move under the ID sealed in them.
    Cookie(Client),
}

impl Migrating {
    /// Sessions kept in `new`, moved out of the store `migration` names.
    pub(crate) fn new(new: Arc<dyn SessionStore>, migration: Migration) -> Self {
        Migrating {
            new: Server(new),
            old: match migration.from {
                Source::Store(store) => Old::Store(Server(store)),
                Source::Cookie(store) => Old::Cookie(Client(store)),
            },
            phase: migration.phase,
        }
    }

    /// Where new sessions are created: the old store until every instance
    /// reads both stores.
    fn creates_in(&self) -> Origin {
        match self.phase {
            MigrationPhase::ReadBoth => Origin::Previous,
            MigrationPhase::Move => Origin::Current,
        }
    }

    /// The session `id` and where it is, moving it in phase 2.
    async fn find(&self, config: &Config, id: &Id) -> Result<Option<(Record, Origin)>> {
        if let Some(record) = self.new.fetch(config, id).await? {
            return Ok(Some((record, Origin::Current)));
        }
        match &self.old {
            Old::Store(old) => self.find_old(config, old, id).await,
            // IDs are only ever kept in the new store.
            Old::Cookie(_) => Ok(None),
        }
    }

    /// The session `id`, which the new store did not hold a moment ago,
    /// from the old store.
    async fn find_old(
        &self,
        config: &Config,
        old: &Server,
        id: &Id,
    ) -> Result<Option<(Record, Origin)>> {
        let attempts = config.max_attempts.max(1);
        for _ in 0..attempts {
            let Some(record) = old.fetch(config, id).await? else {
                return Ok(None);
            };
            if is_marker(&record) {
                // Moved, or being moved, by another request.
                let copy = self.complete(config, old, record).await?;
                return Ok(copy.map(|copy| (copy, Origin::Current)));
            }
            if self.phase == MigrationPhase::ReadBoth {
                metrics::old_store_read("served");
                return Ok(Some((record, Origin::Previous)));
            }
            let marker = marked(&record);
            if old.save(config, &marker, record.version).await? {
                metrics::old_store_read("moved");
                let copy = self.complete(config, old, marker).await?;
                return Ok(copy.map(|copy| (copy, Origin::Current)));
            }
            // A save on the old copy came first: move what it saved.
            metrics::conflict();
        }
        metrics::retries_exhausted();
        Err(Error::Conflict { attempts })
    }

    /// Completes the move `marker` stands for: the session as it is in the
    /// new store, or `None` if it was destroyed meanwhile.
    async fn complete(
        &self,
        config: &Config,
        old: &Server,
        marker: Record,
    ) -> Result<Option<Record>> {
        let mut copy = unmarked(marker);
        index_moving(&*self.new.0, config, &copy).await?;
        if !self.insert(config, &mut copy).await? {
            // Another request completed the move first: use its copy.
            return self.new.fetch(config, &copy.id).await;
        }
        // A log-out deletes the marker before the new store's record: if
        // the marker is gone, the session was destroyed while it moved.
        let still_moving = old
            .fetch(config, &copy.id)
            .await?
            .is_some_and(|record| is_marker(&record));
        if !still_moving {
            self.new.remove(config, &copy.id).await?;
            return Ok(None);
        }
        Ok(Some(copy))
    }

    /// Creates `record` in the new store under its own ID: `false`, with
    /// nothing left written, when the new store already holds that ID. A
    /// bound `record` must be in its user's index there already
    /// ([`index_moving`]).
    async fn insert(&self, config: &Config, record: &mut Record) -> Result<bool> {
        let id = record.id.clone();
        self.new.create(config, record).await?;
        if record.id == id {
            return Ok(true);
        }
        // The store wrote it under a fresh ID instead: withdraw that copy.
        let stray = std::mem::replace(&mut record.id, id);
        self.new.remove(config, &stray).await?;
        Ok(false)
    }

    /// A session opened from a sealed cookie, or its copy in the new store
    /// (which the cookie's session moved to in phase 2).
    async fn opened_cookie(&self, config: &Config, opened: Loaded) -> Result<Option<Loaded>> {
        let in_new = |record| Loaded {
            record,
            // The response carries the ID cookie instead of the sealed one.
            resend_cookie: true,
            origin: Origin::Current,
        };
        let id = opened.record.id.clone();
        if let Some(record) = self.new.fetch(config, &id).await? {
            return Ok(Some(in_new(record)));
        }
        if self.phase == MigrationPhase::ReadBoth {
            metrics::old_store_read("served");
            return Ok(Some(Loaded {
                origin: Origin::Previous,
                ..opened
            }));
        }
        let mut copy = opened.record;
        index_moving(&*self.new.0, config, &copy).await?;
        if self.insert(config, &mut copy).await? {
            metrics::old_store_read("moved");
            return Ok(Some(in_new(copy)));
        }
        // A concurrent request with the same cookie moved it first.
        Ok(self.new.fetch(config, &id).await?.map(in_new))
    }
}

#[async_trait]
impl Persistence for Migrating {
    fn recognise(&self, cookie_value: &str) -> Option<Incoming> {
        if let Some(id) = Id::parse(cookie_value) {
            return Some(Incoming::Id(id));
        }
        match &self.old {
            Old::Cookie(client) => client.recognise(cookie_value),
            Old::Store(_) => None,
        }
    }

    async fn load(&self, config: &Config, incoming: &Incoming) -> Result<Option<Loaded>> {
        let loaded = match (incoming, &self.old) {
            (Incoming::Id(id), _) => self.find(config, id).await?.map(|(record, origin)| Loaded {
                record,
                resend_cookie: false,
                origin,
            }),
            (Incoming::Sealed(_), Old::Cookie(client)) => {
                match client.load(config, incoming).await? {
                    Some(opened) => return self.opened_cookie(config, opened).await,
                    // The cookie store counted why it did not open.
                    None => return Ok(None),
                }
            }
            (Incoming::Sealed(_), Old::Store(_)) => None,
        };
        if loaded.is_none() {
            metrics::cookie_rejected("unknown");
        }
        Ok(loaded)
    }

    async fn reload(
        &self,
        config: &Config,
        id: &Id,
        origin: &mut Origin,
    ) -> Result<Option<Record>> {
        Ok(self.find(config, id).await?.map(|(record, found)| {
            *origin = found;
            record
        }))
    }

    async fn write(
        &self,
        config: &Config,
        record: &mut Record,
        expected_version: Option<u64>,
        origin: &mut Origin,
    ) -> Result<Write> {
        // Creates go by phase; saves go where the session is.
        let target = match expected_version {
            None => self.creates_in(),
            Some(_) => *origin,
        };
        let mut ignored = target;
        let written = match (target, &self.old) {
            (Origin::Current, _) => {
                self.new
                    .write(config, record, expected_version, &mut ignored)
                    .await?
            }
            (Origin::Previous, Old::Store(old)) => {
                old.write(config, record, expected_version, &mut ignored)
                    .await?
            }
            (Origin::Previous, Old::Cookie(client)) => {
                client
                    .write(config, record, expected_version, &mut ignored)
                    .await?
            }
        };
        if matches!(written, Write::Saved(_)) {
            *origin = target;
        }
        Ok(written)
    }

    fn check_fits(
        &self,
        config: &Config,
        origin: Option<Origin>,
        next: &dyn Fn() -> Record,
    ) -> Result<()> {
        match (origin.unwrap_or_else(|| self.creates_in()), &self.old) {
            (Origin::Previous, Old::Cookie(client)) => client.check_fits(config, None, next),
            _ => Ok(()),
        }
    }

    async fn replace(
        &self,
        config: &Config,
        old: &Record,
        new: &mut Record,
        origin: &mut Origin,
    ) -> Result<Option<CookieChange>> {
        // Phase 1 keeps the session in the store it is in; phase 2 puts it
        // in the new one.
        let target = match self.phase {
            MigrationPhase::ReadBoth => *origin,
            MigrationPhase::Move => Origin::Current,
        };
        let mut ignored = target;
        let change = match (target, *origin, &self.old) {
            (Origin::Current, Origin::Current, old_store) => {
                // The new store's own rotation (which also checks that a
                // bound session was not revoked meanwhile); then the
                // marker the old ID may have left in the old store.
                let change = self.new.replace(config, old, new, &mut ignored).await?;
                if let Old::Store(store) = old_store {
                    store.remove(config, &old.id).await?;
                }
                return Ok(change);
            }
            (Origin::Current, _, _) => {
                self.new.create(config, new).await?;
                Some(CookieChange::changed(None))
            }
            (Origin::Previous, _, Old::Store(store)) => {
                store.create(config, new).await?;
                Some(CookieChange::changed(None))
            }
            (Origin::Previous, _, Old::Cookie(client)) => {
                client.replace(config, old, new, &mut ignored).await?
            }
        };
        self.delete(config, &old.id).await?;
        *origin = target;
        Ok(change)
    }

    fn user_sessions(&self, config: &Arc<Config>) -> UserSessions {
        let users = self.new.user_sessions(config);
        match &self.old {
            // Sessions of either store, named by either store's index. In
            // phase 1 log-ins are indexed in both: the old store's index is
            // the one instances of the old configuration (and a rollback)
            // read, the new store's the one left once the migration is
            // over. Sessions moving later are indexed in the new store as
            // they move (`complete`).
            Old::Store(old) => {
                users.with_previous(old.0.clone(), self.phase == MigrationPhase::ReadBoth)
            }
            // Sessions sealed in cookies cannot be listed or revoked until
            // they move into the new store, which indexes them.
            Old::Cookie(_) => users,
        }
    }

    async fn delete(&self, config: &Config, id: &Id) -> Result<()> {
        // The old store first: a move that sees its marker gone withdraws
        // its copy (see `complete`).
        if let Old::Store(old) = &self.old {
            old.remove(config, id).await?;
        }
        self.new.remove(config, id).await
    }

    async fn extend(
        &self,
        config: &Config,
        id: &Id,
        expires_at: Option<OffsetDateTime>,
        origin: Origin,
    ) -> Result<Option<CookieChange>> {
        match (origin, &self.old) {
            (Origin::Current, _) => self.new.extend(config, id, expires_at, origin).await,
            (Origin::Previous, Old::Store(old)) => old.extend(config, id, expires_at, origin).await,
            (Origin::Previous, Old::Cookie(client)) => {
                client.extend(config, id, expires_at, origin).await
            }
        }
    }

    fn cookie_value(
        &self,
        config: &Config,
        record: &Record,
        data: &Data,
        origin: Origin,
    ) -> Result<String> {
        match (origin, &self.old) {
            (Origin::Previous, Old::Cookie(client)) => {
                client.cookie_value(config, record, data, origin)
            }
            _ => self.new.cookie_value(config, record, data, origin),
        }
    }
}

/// Whether `record` is a *moved* marker rather than a session.
pub(crate) fn is_marker(record: &Record) -> bool {
    record.data.contains_key(MOVED)
}

/// The marker that replaces `record` in the old store, one version on,
/// carrying its data (and everything else it holds, such as the user it
/// is bound to) so that any reader can complete the move.
fn marked(record: &Record) -> Record {
    let mut marker = record.clone();
    marker.version = record.version + 1;
    marker
        .data
        .insert(MOVED.to_owned(), Value::from(serde_json::Value::Bool(true)));
    marker
}

/// The session a marker carries, one version above the marker, as it is
/// written into the new store.
fn unmarked(mut marker: Record) -> Record {
    marker.data.remove(MOVED);
    marker.version += 1;
    marker
}
