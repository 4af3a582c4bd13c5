//! Sessions kept on the client, sealed into the cookie by a
//! [`ClientStore`]; nothing is kept on the server.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{CookieChange, Incoming, Loaded, Origin, Persistence, Write};
use crate::config::Config;
use crate::store::{ClientStore, Data, Record};
use crate::users::UserSessions;
use crate::{Id, Result};

/// Longest sealed cookie value looked at; browsers keep about 4 KB.
const MAX_SEALED_LEN: usize = 8 * 1024;

/// A [`ClientStore`] as the session logic uses it.
#[derive(Debug)]
pub(crate) struct Client(pub(crate) Arc<dyn ClientStore>);

impl Client {
    fn seal(&self, config: &Config, record: &Record) -> Result<String> {
        self.0.seal(&config.cookie.name, record)
    }
}

#[async_trait]
impl Persistence for Client {
    fn recognise(&self, cookie_value: &str) -> Option<Incoming> {
        (!cookie_value.is_empty() && cookie_value.len() <= MAX_SEALED_LEN)
            .then(|| Incoming::Sealed(cookie_value.to_owned()))
    }

    async fn load(&self, config: &Config, incoming: &Incoming) -> Result<Option<Loaded>> {
        let Incoming::Sealed(value) = incoming else {
            return Ok(None);
        };
        match self.0.open(&config.cookie.name, value) {
            Some(opened) => Ok(Some(Loaded {
                record: opened.record,
                // Sealed with a retired key: seal it again.
                resend_cookie: opened.reseal,
                origin: Origin::Current,
            })),
            None => {
                tracing::debug!("session cookie did not open; starting a fresh session");
                Ok(None)
            }
        }
    }

    async fn reload(
        &self,
        _config: &Config,
        _id: &Id,
        _origin: &mut Origin,
    ) -> Result<Option<Record>> {
        // The session lives only in the request's cookie: there is no
        // fresher copy anywhere.
        Ok(None)
    }

    async fn write(
        &self,
        config: &Config,
        record: &mut Record,
        _expected_version: Option<u64>,
        _origin: &mut Origin,
    ) -> Result<Write> {
        // Last writer wins: each response carries its own copy.
        let sealed = self.seal(config, record)?;
        Ok(Write::Saved(CookieChange::changed(Some(sealed))))
    }

    fn check_fits(
        &self,
        config: &Config,
        _origin: Option<Origin>,
        next: &dyn Fn() -> Record,
    ) -> Result<()> {
        self.seal(config, &next()).map(drop)
    }

    async fn replace(
        &self,
        config: &Config,
        old: &Record,
        new: &mut Record,
        _origin: &mut Origin,
    ) -> Result<Option<CookieChange>> {
        new.version = old.version + 1;
        let sealed = self.seal(config, new)?;
        Ok(Some(CookieChange::changed(Some(sealed))))
    }

    async fn delete(&self, _config: &Config, _id: &Id) -> Result<()> {
        // Nothing is kept on the server; removing the cookie is all.
        Ok(())
    }

    async fn extend(
        &self,
        _config: &Config,
        _id: &Id,
        _expires_at: Option<OffsetDateTime>,
        _origin: Origin,
    ) -> Result<Option<CookieChange>> {
        // The expiry is inside the cookie: extending it means sealing the
        // session again and sending the cookie.
        Ok(Some(CookieChange::changed(None)))
    }

    fn user_sessions(&self, config: &Arc<Config>) -> UserSessions {
        // Nothing is kept on the server: nothing to list or revoke.
        UserSessions::new(None, config.clone())
    }

    fn cookie_value(
        &self,
        config: &Config,
        record: &Record,
        data: &Data,
        _origin: Origin,
    ) -> Result<String> {
        let mut whole = record.clone();
        whole.data = data.clone();
        self.seal(config, &whole)
    }
}
