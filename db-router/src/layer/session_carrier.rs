//! A [`TokenCarrier`] that keeps the causal token in the user's session
//! (feature `session`).
//!
//! [`SessionCarrier`] reads and writes the token under one key (default
//! `db.causal`) of the [`session_core::Session`] that
//! [`SessionLayer`](session_core::SessionLayer) put in the request
//! extensions. Put the `SessionLayer` *outside* the [`RouterLayer`]: it must
//! add the session before the router looks for it, and save it after the
//! router stored the token.
//!
//! Compared with the default [`CookieCarrier`](super::CookieCarrier), the
//! token follows the session wherever the session lives (a server-side
//! store, or the sealed session cookie), costs the browser no extra
//! cookie, and is gone with the session at log-out.
//!
//! ```
//! # #[cfg(all(feature = "sqlite", feature = "axum"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::routing::{get, post};
//! use axum::Router;
//! use db_router::{DbHandle, DbRouter, RouterLayer, SessionCarrier};
//! use session_core::{Session, SessionLayer};
//! use session_stores::MemoryStore;
//! use sqlx::Sqlite;
//! use tower::ServiceExt as _;
//!
//! let primary = sqlx::SqlitePool::connect("sqlite::memory:").await?;
//! sqlx::query("CREATE TABLE notes (body TEXT)").execute(&primary).await?;
//! let router = DbRouter::builder(primary).build().await?;
//!
//! async fn write(db: DbHandle<Sqlite>) -> &'static str {
//!     sqlx::query("INSERT INTO notes VALUES ('hi')")
//!         .execute(db.write_pool())
//!         .await
//!         .unwrap();
//!     "saved"
//! }
//!
//! async fn token(session: Session) -> String {
//!     session.get::<String>("db.causal").await.unwrap().unwrap_or_default()
//! }
//!
//! let app = Router::new()
//!     .route("/notes", post(write))
//!     .route("/token", get(token))
//!     // Defaults: the token under the session key `db.causal`.
//!     .layer(RouterLayer::new(router).with_carrier(SessionCarrier::new()))
//!     // The session layer goes outside the router layer.
//!     .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
//!
//! let post = http::Request::post("/notes").body(axum::body::Body::empty())?;
//! let response = app.clone().oneshot(post).await?;
//! let cookie = response.headers()["set-cookie"].to_str()?;
//! let session_cookie = cookie.split(';').next().unwrap().to_owned();
//!
//! let get = http::Request::get("/token")
//!     .header("cookie", session_cookie)
//!     .body(axum::body::Body::empty())?;
//! let response = app.oneshot(get).await?;
//! let body = axum::body::to_bytes(response.into_body(), 1024).await?;
//! assert!(body.starts_with(b"v1."), "the token travels in the session");
//!
//! // Customised: another session key.
//! let _carrier = SessionCarrier::new().with_key("shop.db_token");
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "sqlite", feature = "axum")))]
//! # fn main() {}
//! ```
//!
//! # Outside Tower (actix-web)
//!
//! A framework whose middleware is not Tower's (actix-web) keeps the same
//! rules with two calls around its handler: [`SessionCarrier::start`] makes
//! the request's [`DbHandle`] from the token in its session, and
//! [`SessionCarrier::finish`] records the token of a request that wrote.
//! With actix-web's `middleware::from_fn`, inside the session middleware:
//!
//! ```ignore
//! async fn db_router(req: ServiceRequest, next: Next<impl MessageBody>) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
//!     let session = req.extract::<Session>().await?;
//!     let role = if req.method() == Method::GET || req.method() == Method::HEAD { Role::Read } else { Role::Write };
//!     let db = CARRIER.start(ROUTER.clone(), role, &session).await;
//!     req.extensions_mut().insert(db.clone()); // handlers take `web::ReqData<DbHandle<DB>>`
//!     let res = next.call(req).await?;
//!     CARRIER.finish(&db, &session).await;
//!     Ok(res)
//! }
//! ```
//!
//! The `actix-cart` example runs exactly this.
//!
//! [`RouterLayer`]: super::RouterLayer

use std::borrow::Cow;

use http::{request, response};
use session_core::Session;

use super::carrier::{TokenCarrier, parse_carried};
use super::handle::DbHandle;
use crate::backend::RoutedDatabase;
use crate::error::{Error, Result};
use crate::router::{DbRouter, Role};
use crate::token::CausalToken;

/// Keeps the causal token in the request's [`Session`]. See the
/// [module documentation](self) for an example.
///
/// * **Load**: the token's string form under the key; a missing or
///   malformed value is no token. A session store that fails makes the
///   request's reads go to the primary (see [`TokenCarrier::load`]), and so
///   does a request without a session (no `SessionLayer` outside the
///   router), which is logged as a warning.
/// * **Store**: an atomic [`Session::update`], so concurrent writes of one
///   user never replace a newer token with an older one.
#[derive(Clone, Debug)]
pub struct SessionCarrier {
    key: Cow<'static, str>,
}

impl Default for SessionCarrier {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionCarrier {
    /// A carrier using the session key `db.causal`.
    pub fn new() -> Self {
        Self {
            key: Cow::Borrowed("db.causal"),
        }
    }

    /// Another session key.
    pub fn with_key(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        self.key = key.into();
        self
    }

    /// The session key of the token.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Request start, for a front end other than [`RouterLayer`]
    /// (actix-web; see the [module documentation](self)): the request's
    /// handle over `router` in `role`, its reads carrying the token kept in
    /// `session`. A session that cannot be read sends the reads to the
    /// primary, as with the layer.
    ///
    /// [`RouterLayer`]: super::RouterLayer
    pub async fn start<DB: RoutedDatabase>(
        &self,
        router: DbRouter<DB>,
        role: Role,
        session: &Session,
    ) -> DbHandle<DB> {
        match self.load_from(session).await {
            Ok(token) => DbHandle::build(router, role, token, false),
            Err(error) => {
                tracing::warn!(%error, "causal token carrier failed to load; reads use the primary");
                DbHandle::build(router, role, None, true)
            }
        }
    }

    /// Response time, after [`start`](Self::start) and the handler: if the
    /// request wrote, records the primary's position in `session` for the
    /// user's next reads (before the session is saved). A failure is
    /// logged, as with the layer.
    pub async fn finish<DB: RoutedDatabase>(&self, handle: &DbHandle<DB>, session: &Session) {
        let Some(token) = handle.finish().await else {
            return;
        };
        if let Err(error) = self.store_in(session, &token).await {
            tracing::error!(%error, "causal token carrier failed to store the token");
        }
    }

    async fn load_from(&self, session: &Session) -> Result<Option<CausalToken>> {
        let value = session
            .get::<String>(&self.key)
            .await
            .map_err(Error::carrier)?;
        Ok(value.and_then(|text| parse_carried(&text, "session")))
    }

    async fn store_in(&self, session: &Session, token: &CausalToken) -> Result<()> {
        session
            .update(&self.key, |old: Option<String>| {
                match old.as_deref().map(CausalToken::parse) {
                    Some(Ok(old)) if covers(&old, token) => old.to_string(),
                    _ => token.to_string(),
                }
            })
            .await
            .map_err(Error::carrier)?;
        Ok(())
    }
}

/// The request reached the router without a [`Session`] in its
/// extensions.
#[derive(Debug, thiserror::Error)]
#[error(
    "no `session_core::Session` in the request extensions: is `SessionLayer` installed \
     outside `RouterLayer`?"
)]
struct MissingSession;

/// Whether `old` already covers everything `new` stands for, so that
/// replacing it would lose nothing.
fn covers(old: &CausalToken, new: &CausalToken) -> bool {
    let positions = match (old.position(), new.position()) {
        (Some(have), Some(want)) => have.includes(want),
        (_, None) => true,
        (None, Some(_)) => false,
    };
    positions && old.written_at() >= new.written_at()
}

impl TokenCarrier for SessionCarrier {
    type Context = Option<Session>;

    fn context(&self, request: &request::Parts) -> Self::Context {
        request.extensions.get::<Session>().cloned()
    }

    async fn load(
        &self,
        cx: &Self::Context,
        _request: &request::Parts,
    ) -> Result<Option<CausalToken>> {
        let session = cx.as_ref().ok_or_else(|| Error::carrier(MissingSession))?;
        self.load_from(session).await
    }

    async fn store(
        &self,
        cx: Self::Context,
        token: &CausalToken,
        _response: &mut response::Parts,
    ) -> Result<()> {
        let session = cx.ok_or_else(|| Error::carrier(MissingSession))?;
        self.store_in(&session, token).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::token::{Lsn, Position};

    fn at(ms: u64, lsn: Option<u64>) -> CausalToken {
        CausalToken::with_written_at(
            lsn.map(|l| Position::Lsn(Lsn(l))),
            UNIX_EPOCH + Duration::from_millis(ms),
        )
    }

    #[test]
    fn newer_tokens_replace_older_ones_only() {
        assert!(covers(&at(2_000, Some(20)), &at(1_000, Some(10))));
        assert!(!covers(&at(1_000, Some(10)), &at(2_000, Some(20))));
        assert!(!covers(&at(2_000, Some(10)), &at(1_000, Some(20))));
        assert!(covers(&at(2_000, None), &at(1_000, None)));
        assert!(!covers(&at(1_000, None), &at(2_000, None)));
        assert!(!covers(&at(2_000, None), &at(1_000, Some(5))));
    }
}
