//! Session stores for [`session-core`](session_core): where the sessions of
//! a Tower or axum app live.
//!
//! Each store keeps versioned session records for the
//! [`SessionLayer`](session_core::SessionLayer) and passes session-core's
//! conformance suite, compare-and-set saves included, so concurrent
//! requests of one user never lose each other's changes. Pick the store
//! that fits how the app is deployed; the handlers do not change.
//!
//! | store | where the state lives | survives round-robin over instances | survives losing an instance |
//! |-------|-----------------------|-------------------------------------|-----------------------------|
//! | [`MemoryStore`] | this process | no: one instance, or sticky sessions | no |
//! | [`CookieStore`] | the browser, sealed in the cookie (AES-256-GCM) | yes, but concurrent requests are last-writer-wins | yes |
//! | [`RedisStore`] | Redis: single node, Cluster, TLS | yes | yes with Cluster (replicas are promoted; writes in the last instant before a crash may be lost, see [`redis`](mod@redis)) or a replicated Redis |
//! | [`DynamoDbStore`] | an Amazon DynamoDB table | yes | yes (managed, multi-AZ) |
//! | [`MemcachedStore`] | Memcached: one node or several, each session on one | yes | no: a lost node loses its sessions (no replication, see [`memcached`](mod@memcached)) |
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
//! // One instance: sessions in this process, 100 000 at most.
//! let store = MemoryStore::builder().with_max_sessions(100_000).build();
//! // Several instances: the same app on a shared store, e.g.
//! // `RedisStore::connect("redis://127.0.0.1:6379").await?`.
//! let app = Router::new()
//!     .route("/", get(counter))
//!     .layer(SessionLayer::new(store).with_secure(false));
//!
//! let res = app.oneshot(http::Request::new(axum::body::Body::empty())).await.unwrap();
//! let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
//! assert_eq!(body, "visit 1");
//! # }
//! ```
//!
//! The [`redis`](mod@redis) module shows how to connect to Redis from URLs or
//! from a client the application already has, and [`dynamodb`] how to use a
//! DynamoDB client of your own.
//!
//! # Features
//!
//! | feature  | default | store |
//! |----------|---------|-------|
//! | `memory` | yes     | [`MemoryStore`]: in-process, bounded, expiring, kept encoded |
//! | `cookie` | no      | [`CookieStore`]: the session encrypted in its cookie, 4 KB at most |
//! | `redis`  | no      | [`RedisStore`]: Redis single node or Cluster, TLS (rustls, with the crypto provider the application installs), ACL users, an optional near cache |
//! | `dynamodb` | no    | [`DynamoDbStore`]: Amazon DynamoDB (aws-sdk-dynamodb) |
//! | `memcached` | no   | [`MemcachedStore`]: Memcached, one node or a cluster (consistent hashing), CAS saves |
//! | `full`   | no      | every store |
//! | `metrics` | no     | rejected cookies by reason (cookie store) and near-cache hits, misses and bypasses (Redis), through the [`metrics`](https://docs.rs/metrics) facade; turns on session-core's `metrics` too |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
mod memory;

#[cfg(feature = "memory")]
pub use memory::{MemoryStore, MemoryStoreBuilder};

#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub mod cookie;
#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub use cookie::CookieStore;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisStore, RedisStoreBuilder};

#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub mod dynamodb;
#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub use self::dynamodb::DynamoDbStore;

#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub mod memcached;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use self::memcached::{MemcachedStore, MemcachedStoreBuilder};

#[cfg(any(feature = "redis", feature = "cookie"))]
mod metrics;
#[cfg(any(feature = "redis", feature = "dynamodb", feature = "memcached"))]
mod stored;

/// The README's examples, compiled as doctests.
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
