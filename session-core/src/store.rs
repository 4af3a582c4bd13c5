//! The `SessionStore` trait that backends implement.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{Id, Record, Result};

/// A backend that keeps versioned session records.
///
/// Every method is one logical operation on one record; the
/// [`SessionLayer`](crate::SessionLayer) builds the session semantics
/// (laziness, merging of concurrent changes, expiry, ID rotation) on top.
///
/// Implementations must:
/// - never return a record from [`load`](SessionStore::load) whose
///   `expires_at` has passed, even if the backend has not yet evicted it;
/// - make [`save`](SessionStore::save) a compare-and-set on the version,
///   atomic with respect to concurrent saves from any process;
/// - convert backend failures into [`Error::Backend`](crate::Error::Backend);
/// - recognise their own write when a client library retries a save or
///   create whose reply was lost (a write token stored with the record
///   does it), and report it as done rather than as a conflict: otherwise
///   [`Session::update`](crate::Session::update) would apply its change
///   twice.
///
/// The [`test_suite`](crate::test_suite) (feature `test-suite`) checks all
/// of this against a real backend.
#[async_trait]
pub trait SessionStore: fmt::Debug + Send + Sync + 'static {
    /// Inserts a new record, never overwriting an existing one.
    ///
    /// If a record with `record.id` already exists, the store replaces
    /// `record.id` with a fresh [`Id::random`] and tries again, so that on
    /// success `record.id` names the record just written.
    async fn create(&self, record: &mut Record) -> Result<()>;

    /// Loads a record, or `None` if it does not exist or has expired.
    async fn load(&self, id: &Id) -> Result<Option<Record>>;

    /// Replaces the stored record with `record` if and only if the stored
    /// version equals `expected_version` (`record.version` is then the new
    /// version, normally `expected_version + 1`).
    ///
    /// Returns `Ok(false)`, writing nothing, if the stored version differs
    /// or the record no longer exists.
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool>;

    /// Deletes a record. Deleting a missing record is not an error.
    async fn delete(&self, id: &Id) -> Result<()>;

    /// Sets the expiry of an existing record without rewriting its data or
    /// changing its version. Returns `Ok(false)` if the record does not
    /// exist.
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool>;
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        (**self).create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        (**self).load(id).await
    }
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        (**self).save(record, expected_version).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        (**self).delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        (**self).touch(id, expires_at).await
    }
}

/// A store that keeps the whole session on the client, sealed in the
/// session cookie itself, for [`SessionLayer::client_side`](crate::SessionLayer::client_side).
///
/// Nothing is kept on the server, so any instance can serve any request
/// and losing an instance loses nothing. The price: the cookie's size limit
/// (about 4 KB), and **last-writer-wins between concurrent requests**: two
/// requests in flight each carry the cookie they were sent with, and the
/// browser keeps whichever response arrives last. A destroyed session
/// cannot be revoked on the server; its cookie stays valid until it
/// expires if a copy was kept.
pub trait ClientStore: fmt::Debug + Send + Sync + 'static {
    /// Seals `record` into a cookie value for the cookie `cookie_name`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`](crate::Error::TooLarge) when the cookie would
    /// exceed the size browsers keep; nothing is half-written, the previous
    /// cookie stays valid.
    fn seal(&self, cookie_name: &str, record: &Record) -> Result<String>;

    /// Opens a cookie value sealed by [`seal`](ClientStore::seal) for the
    /// same cookie name. Tampered, truncated, garbage, wrong-key and expired
    /// values give `None`, which starts a fresh session.
    fn open(&self, cookie_name: &str, value: &str) -> Option<Opened>;
}

/// A session opened from a cookie by [`ClientStore::open`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Opened {
    /// The session.
    pub record: Record,
    /// Whether it was sealed with a retired key and should be sealed again
    /// with the current one.
    pub reseal: bool,
}

impl Opened {
    /// A session opened from a cookie.
    pub fn new(record: Record, reseal: bool) -> Self {
        Opened { record, reseal }
    }
}

/// Where a layer keeps its sessions.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Server(Arc<dyn SessionStore>),
    Client(Arc<dyn ClientStore>),
}
