//! actix-web 4 front end (feature `actix`): the same sessions as the Tower
//! layer, for actix-web apps.
//!
//! - [`SessionLayer`](crate::SessionLayer) is an actix-web middleware
//!   (`Transform`) as well as a Tower layer: build it once with the same
//!   `with_*` settings and pass it to `App::wrap`. Each request gets a
//!   [`Session`](crate::Session) in its extensions; the middleware saves
//!   it after the handler and adds the `Set-Cookie` header, or answers an
//!   empty `503` with `Retry-After: 1` when the store is down or slow
//!   (`409` for a save that kept losing, `413` for an oversized session),
//!   exactly as the Tower layer does.
//! - [`Session`](crate::Session) is an extractor (`FromRequest`); its
//!   error, [`MissingSessionLayer`](crate::MissingSessionLayer), names the
//!   middleware a route lacks.
//! - [`Error`](crate::Error) is a `ResponseError`, so a handler can return
//!   it with `?`: the status of [`Error::status`](crate::Error::status),
//!   the client-safe [`public_message`](crate::Error::public_message) and,
//!   for a store that is down, `Retry-After`.
//!
//! Everything that makes a session (lazy loading, compare-and-set saves
//! that re-apply their changes after a lost race, idle and absolute expiry,
//! throttled `touch`, the cookie's attributes, the store timeout) lives in
//! the framework-independent request lifecycle that the Tower layer runs
//! too; this module only moves the `Cookie` headers in and the `Set-Cookie`
//! header out. So a cookie issued by an axum instance works on an actix-web
//! instance over the same store, and the other way round, and every store
//! (the sealed cookie store included) works here unchanged.
//!
//! # Why a feature of `session-core`
//!
//! The front end is a few dozen lines over the core's private lifecycle,
//! which it must use without copying it. A separate crate could only reach
//! that lifecycle through a public API made for it, which would be public
//! for everyone. As a feature it is one more adapter next to the `axum`
//! one, versioned with the core, and apps that do not ask for it never
//! compile actix-web.
//!
//! # Example
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use session_core::{Session, SessionLayer};
//! use session_stores::MemoryStore;
//!
//! async fn counter(session: Session) -> Result<HttpResponse, session_core::Error> {
//!     let n: u64 = session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(HttpResponse::Ok().body(format!("visit {n}")))
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! // The same value an axum app would pass to `Router::layer`.
//! let sessions = SessionLayer::new(MemoryStore::default())
//!     .with_secure(false) // plain HTTP during development
//!     .with_idle_timeout(Some(std::time::Duration::from_secs(30 * 60)));
//! let app = actix_web::test::init_service(
//!     App::new().wrap(sessions).route("/", web::get().to(counter)),
//! )
//! .await;
//!
//! let res = actix_web::test::call_service(&app, actix_web::test::TestRequest::get().to_request()).await;
//! let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
//! assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
//!
//! let id = cookie.split(';').next().unwrap().to_owned();
//! let req = actix_web::test::TestRequest::get().insert_header(("cookie", id)).to_request();
//! let body = actix_web::test::call_and_read_body(&app, req).await;
//! assert_eq!(body, "visit 2");
//! # });
//! ```
//!
//! # Coming from `actix-session`
//!
//! | `actix-session` | here |
//! |-----------------|------|
//! | `SessionMiddleware::new(store, key)` | `App::wrap(SessionLayer::new(store))`; a server-side store needs no key (the cookie holds a random 128-bit ID), the cookie store takes its keys itself |
//! | `Session::get`, `insert`, `remove` (synchronous, on the state loaded before the handler) | the same names, `async`, loading only when first used |
//! | `Session::renew`, `purge` | [`Session::cycle_id`](crate::Session::cycle_id), [`Session::destroy`](crate::Session::destroy) |
//! | read-modify-write by hand: concurrent requests overwrite each other | [`Session::update`](crate::Session::update): compare-and-set, re-run on fresh data |
//! | `RedisSessionStore`, `CookieSessionStore` | `session_stores::RedisStore` (single node or Cluster), `CookieStore`, `DynamoDbStore`, `MemoryStore` |

mod extract;
mod middleware;
mod response;

pub use middleware::SessionMiddleware;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;

/// The `http` 1 status of the core as the status type of actix-web.
pub(crate) fn status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The `Retry-After` value for `error`, as a header value of actix-web.
fn retry_after(error: &crate::Error) -> Option<HeaderValue> {
    error
        .retry_after()
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
}
