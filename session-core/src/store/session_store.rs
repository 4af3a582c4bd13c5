//! The `SessionStore` trait: backends that keep sessions on the server.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::record::Record;
use super::user_index::UserIndex;
use crate::{Error, Id, Result};

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
/// # The per-user session index
///
/// [`Session::bind_user`](crate::Session::bind_user) and the listing and
/// revocation built on it need one more thing from a store: a small,
/// versioned [`UserIndex`] per user, kept under
/// [`user_key`](super::user_key)`(user)`. session-core owns its content
/// and every rule about it (order of writes, trimming, the cap per user);
/// a store only loads it, saves it with compare-and-set on its version
/// and deletes it, through the three `*_user_index` methods. Their
/// default implementations fail with [`Error::Unsupported`] and
/// [`supports_user_index`](SessionStore::supports_user_index) says
/// `false`, so a store written before the index existed still compiles
/// and works for everything else.
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

    /// Whether this store keeps per-user session indexes (the three
    /// `*_user_index` methods). Default: `false`.
    fn supports_user_index(&self) -> bool {
        false
    }

    /// Loads the index of `user` (stored under
    /// [`user_key`](super::user_key)`(user)` or a key made from it), or
    /// `None` if there is none or it has expired.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] unless the store implements it (the default).
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        let _ = user;
        Err(Error::Unsupported {
            operation: "load_user_index",
        })
    }

    /// Writes the index of `user`: with `expected_version` `None`, only if
    /// there is no live index yet; with `Some(v)`, only if the stored
    /// version is `v` (compare-and-set; `index.version` is then the new
    /// version). Returns `Ok(false)`, writing nothing, otherwise. The
    /// stored index expires at `index.expires_at`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] unless the store implements it (the default).
    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        let _ = (user, index, expected_version);
        Err(Error::Unsupported {
            operation: "save_user_index",
        })
    }

    /// Deletes the index of `user` if its stored version is
    /// `expected_version`; `Ok(false)` otherwise (including when there is
    /// none).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] unless the store implements it (the default).
    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        let _ = (user, expected_version);
        Err(Error::Unsupported {
            operation: "delete_user_index",
        })
    }

    /// The same store (same data, same settings) with connections of its
    /// own, driven by the async runtime this call runs on; `None` (the
    /// default) when this handle serves every runtime as well.
    ///
    /// A server that runs one single-threaded runtime per worker thread
    /// (actix-web) calls it once in each worker as the worker starts, so
    /// that the worker's store calls stay on its own thread. A client that
    /// drives its connection from a background task of the runtime that
    /// opened it (as redis-rs does) would otherwise hand every call to
    /// that runtime's thread and be woken by it for the reply: two thread
    /// wake-ups per call.
    ///
    /// # Errors
    ///
    /// The new connection could not be opened; the caller then keeps
    /// using this handle.
    async fn on_current_runtime(&self) -> Result<Option<Arc<dyn SessionStore>>> {
        Ok(None)
    }
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
    fn supports_user_index(&self) -> bool {
        (**self).supports_user_index()
    }
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        (**self).load_user_index(user).await
    }
    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        (**self)
            .save_user_index(user, index, expected_version)
            .await
    }
    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        (**self).delete_user_index(user, expected_version).await
    }
    async fn on_current_runtime(&self) -> Result<Option<Arc<dyn SessionStore>>> {
        (**self).on_current_runtime().await
    }
}
