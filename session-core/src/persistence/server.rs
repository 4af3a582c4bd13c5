//! Sessions kept on the server by a [`SessionStore`]; the cookie carries
//! only the session ID.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tracing::Instrument as _;

use super::{CookieChange, Incoming, Loaded, Origin, Persistence, Write};
use crate::config::Config;
use crate::metrics;
use crate::store::{Data, Record, SessionStore};
use crate::users::UserSessions;
use crate::{Error, Id, Result};

/// A [`SessionStore`] as the session logic uses it: every call bounded by
/// the store timeout.
#[derive(Debug)]
pub(crate) struct Server(pub(crate) Arc<dyn SessionStore>);

/// Runs one store call under the configured timeout, in a span.
pub(crate) async fn call<T>(
    config: &Config,
    op: &'static str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let limit = config.store_timeout;
    let span = tracing::debug_span!("session_store", op, db.operation = op);
    let timer = metrics::Timer::start();
    match tokio::time::timeout(limit, fut.instrument(span)).await {
        Ok(Ok(v)) => {
            timer.stop(op, "ok");
            Ok(v)
        }
        Ok(Err(e)) => {
            timer.stop(
                op,
                if matches!(e, Error::Timeout(_)) {
                    "timeout"
                } else {
                    "error"
                },
            );
            tracing::warn!(op, error = %e, "session store call failed");
            Err(e)
        }
        Err(_) => {
            timer.stop(op, "timeout");
            tracing::warn!(op, ?limit, "session store call timed out");
            Err(Error::Timeout(limit))
        }
    }
}

/// The store calls a [`Migrating`](super::Migrating) persistence makes
/// on either of its stores, each bounded like the calls below.
impl Server {
    /// Loads `id`.
    pub(super) async fn fetch(&self, config: &Config, id: &Id) -> Result<Option<Record>> {
        call(config, "load", self.0.load(id)).await
    }

    /// Creates `record`, under another ID if `record.id` is taken.
    pub(super) async fn create(&self, config: &Config, record: &mut Record) -> Result<()> {
        call(config, "create", self.0.create(record)).await
    }

    /// Compare-and-set of `record` on `expected` version.
    pub(super) async fn save(
        &self,
        config: &Config,
        record: &Record,
        expected: u64,
    ) -> Result<bool> {
        call(config, "save", self.0.save(record, expected)).await
    }

    /// Deletes `id`.
    pub(super) async fn remove(&self, config: &Config, id: &Id) -> Result<()> {
        call(config, "delete", self.0.delete(id)).await
    }
}

#[async_trait]
impl Persistence for Server {
    fn recognise(&self, cookie_value: &str) -> Option<Incoming> {
        Id::parse(cookie_value).map(Incoming::Id)
    }

    async fn load(&self, config: &Config, incoming: &Incoming) -> Result<Option<Loaded>> {
        let Some(id) = incoming.id() else {
            return Ok(None);
        };
        let record = self.fetch(config, id).await?;
        if record.is_none() {
            metrics::cookie_rejected("unknown");
        }
        Ok(record.map(|record| Loaded {
            record,
            resend_cookie: false,
            origin: Origin::Current,
        }))
    }

    async fn reload(
        &self,
        config: &Config,
        id: &Id,
        _origin: &mut Origin,
    ) -> Result<Option<Record>> {
        self.fetch(config, id).await
    }

    async fn write(
        &self,
        config: &Config,
        record: &mut Record,
        expected_version: Option<u64>,
        _origin: &mut Origin,
    ) -> Result<Write> {
        let Some(expected) = expected_version else {
            self.create(config, record).await?;
            // A new session: the client learns its ID.
            return Ok(Write::Saved(CookieChange::changed(None)));
        };
        Ok(if self.save(config, record, expected).await? {
            Write::Saved(CookieChange::SAME)
        } else {
            Write::Conflict
        })
    }

    fn check_fits(
        &self,
        _config: &Config,
        _origin: Option<Origin>,
        _next: &dyn Fn() -> Record,
    ) -> Result<()> {
        // The store itself reports a size limit when it writes.
        Ok(())
    }

    async fn replace(
        &self,
        config: &Config,
        old: &Record,
        new: &mut Record,
        _origin: &mut Origin,
    ) -> Result<Option<CookieChange>> {
        call(config, "create", self.0.create(new)).await?;
        // A bound session revoked while its new ID was being written must
        // not live on under it: the old record still existing after the
        // new one is written means a revocation deleting it comes later
        // and finds the new ID in the index (indexed before it was
        // written).
        if old.binding.is_some()
            && !call(config, "touch", self.0.touch(&old.id, old.expires_at)).await?
        {
            call(config, "delete", self.0.delete(&new.id)).await?;
            return Ok(None);
        }
        call(config, "delete", self.0.delete(&old.id)).await?;
        Ok(Some(CookieChange::changed(None)))
    }

    async fn delete(&self, config: &Config, id: &Id) -> Result<()> {
        self.remove(config, id).await
    }

    async fn extend(
        &self,
        config: &Config,
        id: &Id,
        expires_at: Option<OffsetDateTime>,
        _origin: Origin,
    ) -> Result<Option<CookieChange>> {
        let touched = call(config, "touch", self.0.touch(id, expires_at)).await?;
        Ok(touched.then_some(CookieChange::SAME))
    }

    fn user_sessions(&self, config: &Arc<Config>) -> UserSessions {
        UserSessions::new(Some(self.0.clone()), config.clone())
    }

    fn cookie_value(
        &self,
        _config: &Config,
        record: &Record,
        _data: &Data,
        _origin: Origin,
    ) -> Result<String> {
        Ok(record.id.as_str().to_owned())
    }
}
