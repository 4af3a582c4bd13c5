//! `Migration`: moving a running fleet's sessions from one store to
//! another without logging anyone out.
//!
//! A layer built on the new store reads sessions from the old one too:
//!
//! ```
//! use session_core::{Migration, MigrationPhase, SessionLayer};
//! use session_stores::MemoryStore;
//!
//! # let (old_store, new_store) = (MemoryStore::default(), MemoryStore::default());
//! // Phase 1, rolled out first: read both stores, keep sessions where
//! // they are, create new ones in the old store.
//! let layer = SessionLayer::new(new_store.clone())
//!     .with_migration(Migration::from_store(old_store.clone()));
//!
//! // Phase 2, rolled out once no instance of the old configuration is
//! // left: move each session into the new store when it is next used.
//! let layer = SessionLayer::new(new_store)
//!     .with_migration(Migration::from_store(old_store).with_phase(MigrationPhase::Move));
//! ```
//!
//! # Why two phases
//!
//! During a rolling restart, instances of the old configuration serve
//! side by side with the new ones, and they know only the old store. A
//! session moved into the new store would be unknown to them (a user
//! logged out at random), and so would a session created there, or an ID
//! cookie given to a user of the cookie store. So the first phase only
//! *reads* the new store: it keeps every session where it is and creates
//! new ones in the old store (for the cookie store: it keeps issuing
//! sealed cookies). Only once every instance runs the first phase does
//! the second one move sessions.
//!
//! # How a session moves
//!
//! Phase 2 finds a session in the old store only. It replaces the old
//! record, compare-and-set on its version, by a *moved* marker carrying
//! the same data, then creates the record in the new store under the same
//! ID, with a version above the marker's. A concurrent save on the old
//! copy either lands before the marker (and is moved with it) or fails its
//! compare-and-set and is retried on the new copy: no update is lost. The
//! marker is never served; whoever reads one (an instance of either phase)
//! completes the move into the new store and uses the copy there, so a
//! session is never served from both stores. The marker expires with the
//! session. A session kept in a sealed cookie moves the same way into the
//! new store under the ID sealed in it, and the response carries an ID
//! cookie.
//!
//! # A user's sessions
//!
//! [`UserSessions`](crate::UserSessions) (and the [`Session`](crate::Session)
//! methods listing and revoking a user's sessions) see every session bound
//! to the user in either store: they read both stores' indexes and look
//! each session up in the new store, then the old one, and revoke it from
//! the old store first, as a log-out does. Log-ins are indexed in both
//! stores in phase 1, in the new one in phase 2; a bound session moving
//! into the new store is added to its index before its copy is written
//! there, so every session that moved is listed once the migration is
//! over. A session still sealed in its cookie (out of
//! [`from_cookie`](Migration::from_cookie)) cannot be listed or revoked
//! until it moves.
//!
//! The runbook (`docs/store-migration.md`) says when to roll out each
//! phase and when the old store can go.

use std::fmt;
use std::sync::Arc;

use crate::store::{ClientStore, Record, SessionStore};

/// Which phase of a store migration a layer runs; see [`Migration`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MigrationPhase {
    /// Phase 1: sessions are read from the new store, then the old one,
    /// and written back where they were found; new sessions are created in
    /// the old store (the cookie store: sealed cookies keep being issued),
    /// so instances still configured with the old store alone lose
    /// nothing. Roll it out first.
    #[default]
    ReadBoth,
    /// Phase 2: a session found only in the old store moves into the new
    /// one; writes and new sessions go to the new store. Roll it out once
    /// every instance runs [`ReadBoth`](MigrationPhase::ReadBoth) (or this
    /// phase).
    Move,
}

/// The store a [`SessionLayer`](crate::SessionLayer) moves sessions out
/// of, and the phase of the move, for
/// [`SessionLayer::with_migration`](crate::SessionLayer::with_migration).
///
/// See the [module documentation](self) for how it works.
#[derive(Clone)]
pub struct Migration {
    pub(crate) from: Source,
    pub(crate) phase: MigrationPhase,
}

/// The store sessions are moved out of.
#[derive(Clone)]
pub(crate) enum Source {
    Store(Arc<dyn SessionStore>),
    Cookie(Arc<dyn ClientStore>),
}

impl Migration {
    /// A migration out of the server-side store `old` (for example from
    /// one Redis to another, or from Redis to DynamoDB), in
    /// [`MigrationPhase::ReadBoth`].
    pub fn from_store(old: impl SessionStore) -> Self {
        Migration {
            from: Source::Store(Arc::new(old)),
            phase: MigrationPhase::default(),
        }
    }

    /// A migration out of sealed session cookies opened by `old` (the
    /// client-side store the fleet used, with its keys), in
    /// [`MigrationPhase::ReadBoth`]. The session cookie's name must stay
    /// the same.
    pub fn from_cookie(old: impl ClientStore) -> Self {
        Migration {
            from: Source::Cookie(Arc::new(old)),
            phase: MigrationPhase::default(),
        }
    }

    /// The phase to run (default [`MigrationPhase::ReadBoth`]).
    pub fn with_phase(mut self, phase: MigrationPhase) -> Self {
        self.phase = phase;
        self
    }

    /// The phase this migration runs.
    pub fn phase(&self) -> MigrationPhase {
        self.phase
    }

    /// Whether `record`, read from the store being left, is the *moved*
    /// marker a session leaves behind (never served; it expires with the
    /// session), rather than a session still to move. For tools that
    /// inspect the old store during a migration.
    pub fn is_moved_marker(record: &Record) -> bool {
        crate::persistence::is_marker(record)
    }
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from: &dyn fmt::Debug = match &self.from {
            Source::Store(store) => store,
            Source::Cookie(store) => store,
        };
        f.debug_struct("Migration")
            .field("from", from)
            .field("phase", &self.phase)
            .finish()
    }
}
