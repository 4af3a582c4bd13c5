//! Sessions for Tower, axum and actix-web apps that run on several instances at once.
//!
//! A shop runs several app instances behind a load balancer; each request
//! of one user may land on a different instance, and several may be in
//! flight at once. `session-core` gives handlers a [`Session`] whose data
//! lives in a shared [`SessionStore`] and whose writes never silently undo
//! each other:
//!
//! - **Versioned records.** Every save is a compare-and-set on the record's
//!   version. A save that loses the race reloads the session and re-applies
//!   its own changes: changes to different keys merge, and
//!   [`Session::update`] re-runs its read-modify-write on fresh data, so
//!   concurrent "add to cart" requests all land.
//! - **Lazy.** A request that never touches its session costs no store call;
//!   one that only reads costs one load and no write (idle expiry is
//!   extended by a cheap, throttled [`SessionStore::touch`]).
//! - **Safe defaults.** 128-bit IDs from the OS CSPRNG, validated before any
//!   store call; `Secure`, `HttpOnly`, `SameSite=Lax` cookies; idle timeout
//!   and absolute lifetime enforced by the layer itself, not only by the
//!   backend's TTL; [`Session::cycle_id`] for log-in, [`Session::destroy`]
//!   for log-out.
//! - **Clear failures.** A malformed or unknown cookie starts a fresh
//!   session. Store calls are bounded by a timeout; a store that is down
//!   gives the handler an [`Error`] and the client a `503`, never a panic or
//!   a hang.
//! - **Store migration.** [`SessionLayer::with_migration`] moves sessions
//!   from another store, or from sealed cookies, into the layer's store
//!   with no log-out, in two phases safe during a rolling restart (see
//!   [`migration`]).
//!
//! - **A user's sessions.** [`Session::bind_user`] at log-in ties the
//!   session to a user; [`Session::user_sessions`] lists the user's
//!   sessions ([`SessionInfo`], named by a [`SessionHandle`] that is not
//!   the session ID), and [`Session::revoke_session`],
//!   [`Session::revoke_other_sessions`] and [`Session::revoke_all_sessions`]
//!   end them at once on every instance; [`UserSessions`] does the same
//!   outside a request. A log-in acknowledged before a revoke-all began is
//!   always ended by it; see [`UserSessions`] and the
//!   [`SessionStore`] trait for how, without cross-key transactions.
//!
//! Stores live in the `session-stores` crate (memory, encrypted cookie,
//! Redis, DynamoDB, Memcached); any type implementing [`SessionStore`]
//! works. Writing
//! a store? Everything it needs (the traits, the versioned [`store::Record`]
//! and its encoding, the clock) is in the [`store`] module, and the
//! [`test_suite`] checks a store against the whole contract.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use session_core::{Session, SessionLayer};
//! use session_stores::MemoryStore;
//! use tower::ServiceExt as _;
//!
//! async fn counter(session: Session) -> Result<String, session_core::Error> {
//!     let n: u64 = session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(format!("visit {n}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route("/", get(counter)).layer(
//!     SessionLayer::new(MemoryStore::default())
//!         .with_secure(false) // plain HTTP during development
//!         .with_idle_timeout(Some(std::time::Duration::from_secs(30 * 60))),
//! );
//!
//! let res = app.clone().oneshot(http::Request::new(axum::body::Body::empty())).await.unwrap();
//! let cookie = res.headers()["set-cookie"].to_str().unwrap();
//! assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
//!
//! let id = cookie.split(';').next().unwrap().to_owned();
//! let req = http::Request::builder().header("cookie", id).body(axum::body::Body::empty()).unwrap();
//! let res = app.oneshot(req).await.unwrap();
//! let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
//! assert_eq!(body, "visit 2");
//! # }
//! ```
//!
//! # Features
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `axum`       | no      | `Session` as an axum 0.8 extractor (its rejection, [`MissingSessionLayer`], names the missing layer) and `IntoResponse` for [`Error`] |
//! | `actix`      | no      | [`actix`]: `SessionLayer` as an actix-web 4 middleware, `Session` as an actix-web extractor and `ResponseError` for [`Error`] |
//! | `test-suite` | no      | [`test_suite`]: the conformance checks every store must pass |
//! | `metrics`    | no      | store call latency, conflicts, retries, timeouts, `503`s, rejected cookies, cycled and destroyed sessions, shared-value reads, through the [`metrics`](https://docs.rs/metrics) facade (names in `docs/observability.md`) |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
mod config;
mod cookie_header;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod id;
mod layer;
mod lifecycle;
mod metrics;
pub mod migration;
#[cfg(any(feature = "axum", feature = "actix"))]
mod missing_layer;
mod persistence;
mod service;
mod session;
mod shared_values;
pub mod store;
#[cfg(feature = "test-suite")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-suite")))]
pub mod test_suite;
mod users;

pub use config::SameSite;
pub use error::{BoxError, Error, Result};
pub use id::{Id, ParseIdError};
pub use layer::SessionLayer;
pub use migration::{Migration, MigrationPhase};
#[cfg(any(feature = "axum", feature = "actix"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "axum", feature = "actix"))))]
pub use missing_layer::MissingSessionLayer;
pub use service::SessionService;
pub use session::Session;
/// The store contracts, re-exported from [`store`] for naming a store in an
/// app's wiring.
pub use store::{ClientStore, SessionStore};
pub use users::{Device, ParseHandleError, SessionHandle, SessionInfo, UserSessions};

/// Re-exported so stores and handlers name the same `async_trait`.
pub use async_trait::async_trait;

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
