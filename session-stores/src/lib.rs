//! Session stores for [`session-core`](session_core).
//!
//! Each store keeps versioned session records for the
//! [`SessionLayer`](session_core::SessionLayer) and passes session-core's
//! conformance suite, compare-and-set saves included, so concurrent
//! requests of one user never lose each other's changes.
//!
//! | store | where the state lives | survives round-robin over instances | survives losing an instance |
//! |-------|-----------------------|-------------------------------------|-----------------------------|
//! | [`MemoryStore`] | this process (moka) | no: one instance, or sticky sessions | no |
//! | [`CookieStore`] | the browser, sealed in the cookie (AES-256-GCM) | yes, but concurrent requests are last-writer-wins | yes |
//! | [`RedisStore`] | Redis: single node, Cluster, TLS | yes | yes with Cluster (replicas are promoted; writes in the last instant before a crash may be lost, see [`redis`](mod@redis)) or a replicated Redis |
//! | [`DynamoDbStore`] | an Amazon DynamoDB table | yes | yes (managed, multi-AZ) |
//!
//! # Example
//!
//! ```
//! use session_core::{Session, SessionLayer};
//! use session_stores::MemoryStore;
//!
//! let store = MemoryStore::builder().with_max_sessions(100_000).build();
//! let layer = SessionLayer::new(store);
//! # let _ = layer;
//! ```
//!
//! # Features
//!
//! | feature  | default | store |
//! |----------|---------|-------|
//! | `memory` | yes     | [`MemoryStore`]: in-process, bounded, expiring (moka) |
//! | `cookie` | no      | [`CookieStore`]: the session encrypted in its cookie, 4 KB at most |
//! | `redis`  | no      | [`RedisStore`]: Redis single node or Cluster, TLS, ACL users, an optional near cache |
//! | `dynamodb` | no    | [`DynamoDbStore`]: Amazon DynamoDB (aws-sdk-dynamodb) |
//! | `full`   | no      | every store |
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

#[cfg(any(feature = "redis", feature = "dynamodb"))]
mod stored;
