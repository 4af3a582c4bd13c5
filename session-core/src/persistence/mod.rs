//! Where sessions are kept, behind one interface.
//!
//! The session logic (`session.rs`) is written once against [`Persistence`];
//! the two ways of keeping a session implement it: [`Server`] over a
//! [`SessionStore`](crate::SessionStore) (the cookie carries only the ID)
//! and [`Client`] over a [`ClientStore`](crate::ClientStore) (the cookie
//! carries the sealed session). [`Migrating`] composes two of them while
//! a fleet moves its sessions from one store to another.

mod client;
mod migrating;
mod server;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::config::Config;
use crate::store::{Data, Record};
use crate::users::UserSessions;
use crate::{Id, Result};

pub(crate) use client::Client;
pub(crate) use migrating::{Migrating, is_marker};
pub(crate) use server::{Server, call};

/// Which store holds a session. Outside a migration there is one store
/// and every session is [`Origin::Current`]; during a migration a
/// session is in the layer's store (`Current`) or still in the store
/// being left (`Previous`), and is written back where it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The layer's own store.
    #[default]
    Current,
    /// The store a migration moves sessions out of.
    Previous,
}

/// The session cookie a request came with, as its backend recognised it;
/// not yet checked against the store or opened.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A well-formed session ID (server-side stores).
    Id(Id),
    /// A sealed session (client-side stores).
    Sealed(String),
}

impl Incoming {
    /// The stored session this cookie names by its ID, if it does.
    pub(crate) fn id(&self) -> Option<&Id> {
        match self {
            Incoming::Id(id) => Some(id),
            Incoming::Sealed(_) => None,
        }
    }
}

/// A session found for the request's cookie.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The session as stored, possibly expired under the layer's rules.
    pub(crate) record: Record,
    /// The cookie must be sent again although nothing changed (it was
    /// sealed with a retired key, or the session moved to another store).
    pub(crate) resend_cookie: bool,
    /// Which store holds the session.
    pub(crate) origin: Origin,
}

/// How a write changed what the session cookie must carry.
#[derive(Debug)]
pub(crate) struct CookieChange {
    /// The cookie's value is new (a new ID, or the session sealed anew), so
    /// the response must carry it.
    pub(crate) value_changed: bool,
    /// The new value, when the write already made it; `None` when it is
    /// made from the record as the response is finished.
    pub(crate) value: Option<String>,
}

impl CookieChange {
    /// The cookie reads as before: same ID.
    pub(crate) const SAME: CookieChange = CookieChange {
        value_changed: false,
        value: None,
    };

    /// The cookie reads differently now; `value` is the new value if it is
    /// already made.
    pub(crate) fn changed(value: Option<String>) -> Self {
        CookieChange {
            value_changed: true,
            value,
        }
    }
}

/// The outcome of [`Persistence::write`].
#[derive(Debug)]
pub(crate) enum Write {
    /// The record was written.
    Saved(CookieChange),
    /// Another request saved first: nothing was written.
    Conflict,
}

/// One way of keeping sessions. Every method takes the layer's settings
/// for the cookie name and the store timeout.
#[async_trait]
pub(crate) trait Persistence: fmt::Debug + Send + Sync + 'static {
    /// Whether `cookie_value`, the value of a cookie with the session
    /// cookie's name, is worth loading. Malformed values never reach a
    /// store.
    fn recognise(&self, cookie_value: &str) -> Option<Incoming>;

    /// Loads the session the request's cookie names: `None` when it does
    /// not exist or does not open.
    async fn load(&self, config: &Config, incoming: &Incoming) -> Result<Option<Loaded>>;

    /// Loads the stored record `id` again after a lost race, setting
    /// `origin` to the store it was found in.
    async fn reload(&self, config: &Config, id: &Id, origin: &mut Origin)
    -> Result<Option<Record>>;

    /// Writes `record`: a new session (`expected_version` is `None`, and
    /// the write may pick another ID) or a compare-and-set on the stored
    /// version of the record kept in `origin`. On success `origin` names
    /// the store written.
    async fn write(
        &self,
        config: &Config,
        record: &mut Record,
        expected_version: Option<u64>,
        origin: &mut Origin,
    ) -> Result<Write>;

    /// Fails with [`Error::TooLarge`](crate::Error::TooLarge) if the record
    /// `next` would make cannot be kept where the session is (`origin`;
    /// `None` for a session not stored yet); `next` is called only by
    /// backends with a size limit.
    fn check_fits(
        &self,
        config: &Config,
        origin: Option<Origin>,
        next: &dyn Fn() -> Record,
    ) -> Result<()>;

    /// Keeps `new`, the session under a new ID, and retires `old`, which
    /// `origin` holds; `origin` then names the store that holds `new`.
    /// `None` when `old` turned out to be gone (revoked meanwhile), in
    /// which case `new` is not kept either.
    async fn replace(
        &self,
        config: &Config,
        old: &Record,
        new: &mut Record,
        origin: &mut Origin,
    ) -> Result<Option<CookieChange>>;

    /// Forgets the session `id` (log-out).
    async fn delete(&self, config: &Config, id: &Id) -> Result<()>;

    /// Moves the expiry of an unchanged session kept in `origin`; `None`
    /// when the record no longer exists.
    async fn extend(
        &self,
        config: &Config,
        id: &Id,
        expires_at: Option<OffsetDateTime>,
        origin: Origin,
    ) -> Result<Option<CookieChange>>;

    /// The per-user session index over this backend.
    fn user_sessions(&self, config: &Arc<Config>) -> UserSessions;

    /// The cookie value of `record`, kept in `origin`, holding `data`.
    fn cookie_value(
        &self,
        config: &Config,
        record: &Record,
        data: &Data,
        origin: Origin,
    ) -> Result<String>;
}
