//! The request lifecycle, independent of any web framework.
//!
//! A front end (the Tower [`SessionService`](crate::SessionService), and
//! the actix-web middleware behind the `actix` feature) does three things
//! per request:
//!
//! 1. [`Sessions::start`] with the values of the request's `Cookie`
//!    headers, and hands the [`Session`] to the handler (in the request's
//!    extensions);
//! 2. runs the handler;
//! 3. [`finish`] once the response is ready: adds the `Set-Cookie` value
//!    it returns to the response or, on error, answers
//!    [`Error::status`](crate::Error::status) instead, with the
//!    `Retry-After` the error's `retry_after` gives.
//!
//! Everything else (loading, merging, expiry, the cookie's attributes)
//! happens here and in the [`Session`], the same for every front end.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::cookie_header;
use crate::migration::Migration;
use crate::persistence::{Client, Migrating, Persistence, Server};
use crate::store::{ClientStore, SessionStore};
use crate::users::UserSessions;
use crate::{Result, Session};

/// Where sessions are kept and the settings they follow: what a front end
/// needs to start and finish the session of each request.
#[derive(Clone)]
pub(crate) struct Sessions {
    persistence: Arc<dyn Persistence>,
    config: Arc<Config>,
    /// The server-side store, when sessions are kept on the server.
    store: Option<Arc<dyn SessionStore>>,
    /// The migration `persistence` runs, if any.
    migration: Option<Migration>,
}

impl Sessions {
    /// Sessions kept by `store` on the server, with the default settings.
    pub(crate) fn on_server(store: Arc<dyn SessionStore>) -> Self {
        Sessions {
            persistence: Arc::new(Server(store.clone())),
            config: Arc::new(Config::default()),
            store: Some(store),
            migration: None,
        }
    }

    /// Sessions sealed into their cookies by `store`, with the default
    /// settings.
    pub(crate) fn on_client(store: Arc<dyn ClientStore>) -> Self {
        Sessions {
            persistence: Arc::new(Client(store)),
            config: Arc::new(Config::default()),
            store: None,
            migration: None,
        }
    }

    /// Sessions kept on the server, also read from (and, in phase 2,
    /// moved out of) the store `migration` names; replaces an earlier
    /// migration. `false` when sessions are kept on the client, which a
    /// migration cannot move into.
    pub(crate) fn migrate(&mut self, migration: Migration) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        self.persistence = Arc::new(Migrating::new(store.clone(), migration.clone()));
        self.migration = Some(migration);
        true
    }

    /// The same sessions with the server-side store's own connections on
    /// the runtime this call runs on, when the store offers them
    /// ([`SessionStore::on_current_runtime`]); otherwise (or if they
    /// cannot be opened, which is logged) these sessions as they are.
    #[cfg(feature = "actix")]
    pub(crate) async fn on_current_runtime(&self) -> Self {
        let Some(store) = &self.store else {
            return self.clone();
        };
        let local = match store.on_current_runtime().await {
            Ok(Some(local)) => local,
            Ok(None) => return self.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "the session store's connection for this worker could not be opened; sharing the first one");
                return self.clone();
            }
        };
        let persistence: Arc<dyn Persistence> = match &self.migration {
            None => Arc::new(Server(local.clone())),
            Some(migration) => Arc::new(Migrating::new(local.clone(), migration.clone())),
        };
        Sessions {
            persistence,
            config: self.config.clone(),
            store: Some(local),
            migration: self.migration.clone(),
        }
    }

    /// The settings, to change them (copied first if a service shares
    /// them).
    pub(crate) fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The per-user index with this store and these settings.
    pub(crate) fn user_sessions(&self) -> UserSessions {
        self.persistence.user_sessions(&self.config)
    }

    /// Request start: the session of a request whose `Cookie` headers
    /// hold `cookie_headers`. Nothing is loaded yet.
    pub(crate) fn start<'h>(&self, cookie_headers: impl IntoIterator<Item = &'h str>) -> Session {
        let mut named = false;
        let incoming = cookie_header::find(cookie_headers, &self.config.cookie.name, |value| {
            named = true;
            self.persistence.recognise(value)
        });
        if named && incoming.is_none() {
            crate::metrics::cookie_rejected("malformed");
        }
        Session::new(self.persistence.clone(), self.config.clone(), incoming)
    }
}

/// Response time: saves what the request changed and gives the value of the
/// `Set-Cookie` header to add, if any.
///
/// # Errors
///
/// The session could not be saved: the response must not claim success.
pub(crate) async fn finish(session: &Session) -> Result<Option<String>> {
    let action = session
        .finish()
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "session could not be saved"))?;
    Ok(action.map(|action| cookie_header::set_cookie(session.config(), action)))
}

/// After the response is final: counts a `503` that answered a request
/// whose session store failed or timed out. A front end calls it with the
/// status it sends.
pub(crate) async fn responded(session: &Session, status: http::StatusCode) {
    #[cfg(feature = "metrics")]
    if status == http::StatusCode::SERVICE_UNAVAILABLE && session.store_failed().await {
        crate::metrics::unavailable_response();
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (session, status);
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("backend", &self.persistence)
            .field("config", &self.config)
            .finish()
    }
}
