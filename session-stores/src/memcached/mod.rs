//! The Memcached store: one server or a cluster of them (such as an
//! ElastiCache for Memcached cluster), with compare-and-set saves.
//!
//! [`MemcachedStore`] keeps each session in one Memcached item on one node,
//! chosen by rendezvous hashing of the session ID. Saves are
//! compare-and-set on Memcached's CAS values, so concurrent updates from
//! any number of app instances never lose one another's changes.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use session_core::SessionLayer;
//! use session_stores::MemcachedStore;
//!
//! # async fn run() -> session_core::Result<()> {
//! // Defaults: keys `session:<id>`, 1 s timeouts, 1 MiB items, 32
//! // connections per node.
//! let store = MemcachedStore::connect("127.0.0.1:11211,127.0.0.1:11212").await?;
//! let layer = SessionLayer::new(store);
//!
//! // A prefix of our own, tighter timeouts, servers started with `-I 2m`.
//! let store = MemcachedStore::builder()
//!     .with_key_prefix("shop:session:")
//!     .with_response_timeout(Duration::from_millis(300))
//!     .with_max_item_size(2 * 1024 * 1024)
//!     .connect("cache-1.internal:11211,cache-2.internal:11211")
//!     .await?;
//! # let _ = (layer, store);
//! # Ok(())
//! # }
//! ```
//!
//! # No replication: a lost node loses its sessions
//!
//! Memcached keeps each item on exactly one node and copies it nowhere.
//! When a node stops, restarts or is replaced, **the sessions it held are
//! gone**: their users start fresh sessions (for a shop, an empty cart and
//! a new login) once the node answers again. While it is down, requests of
//! those sessions answer `503` rather than silently starting a new session;
//! every session on the other nodes keeps working. That is the difference
//! between ElastiCache's two engines: choose
//! [`RedisStore`](crate::RedisStore) with replicas (or another replicated
//! store) when losing the sessions of one node is not acceptable.
//!
//! # Layout
//!
//! A session lives under the key `<prefix><id>` (default prefix
//! `session:`). The item's value is a small header (the record's version
//! and expiry, and a token naming the write, so that a write sent again
//! after its reply was lost is recognised as already done) followed by the
//! record as written by [`Record::encode`](session_core::store::Record::encode).
//!
//! The item's lifetime follows the record's expiry, rounded up to the
//! second: seconds from now up to 30 days, the absolute Unix time beyond
//! (Memcached reads any larger number as one), none for a session without
//! expiry. Reads also check the expiry to the millisecond.
//!
//! A touch sets the item's lifetime (`mg` with `T`), without reading or
//! rewriting it, and writes the exact new expiry in a small note item,
//! `<prefix><id>~t`, that applies only while the session item is unchanged.
//!
//! # Cost
//!
//! | operation | Memcached commands |
//! |-----------|--------------------|
//! | `load`    | 1 (`mg`); 2 the first time a session touched since its last write is read (the note) |
//! | `create`  | 1 (`ms` in add mode) |
//! | `save`    | 1 (`ms` with the CAS value this instance read); 2 when this instance has not read the session (`mg` first) |
//! | `touch`   | 2 (`mg` with `T`, then the note) |
//! | `delete`  | 1 (`md`) |
//! | user index: load; save or delete | 1 (`mg`); 2 (`mg`, then `ms` or `md` with the CAS value read) |
//!
//! Through the [`SessionLayer`](session_core::SessionLayer), a request that
//! only reads its session costs one command, a request that changes it two
//! (load and save).
//!
//! # Users' session indexes
//!
//! The store keeps the per-user session index (listing and revoking a
//! user's sessions, [`Session::bind_user`](session_core::Session::bind_user))
//! as one item per user, `<prefix>user:<user key>`
//! ([`user_key`](session_core::store::user_key)), changed only with the
//! CAS value just read, so concurrent log-ins and revocations of one user
//! never lose each other's entries.
//!
//! **A weaker guarantee than the other stores:** Memcached may evict any
//! item when it runs short of memory, or lose it with its node. An
//! evicted or lost index hides the sessions it named from listings and
//! from revocation (a revoke-all cannot end a session it cannot find)
//! until they expire; sessions bound later are indexed again. Size the
//! servers so that they do not evict (watch `evictions` in `stats`), set
//! an absolute lifetime so that such sessions end by themselves, or use
//! Redis or DynamoDB where revocation must reach every session.
//!
//! # Connections
//!
//! Each node has its own pool of up to 32 connections
//! ([`MemcachedStoreBuilder::with_max_connections`]). Every command is
//! bounded by the response timeout (waiting for a free connection
//! included) and opening a connection by the connection timeout. A
//! connection that fails is dropped; the next call opens a new one, so the
//! store recovers by itself when a node comes back. A command that fails
//! on an idle connection (one the server may have closed meanwhile) is sent
//! once more on a new connection; the write tokens make that safe.
//!
//! TLS is not supported: the client speaks plain TCP. ElastiCache for
//! Memcached offers in-transit encryption only as an option; use it
//! without, inside a private network.
//!
//! # Failures
//!
//! | situation | result |
//! |-----------|--------|
//! | a node down, refusing or resetting connections | [`Error::Backend`] for the sessions on that node only; the layer answers `503` with `Retry-After: 1`. Other nodes are unaffected; calls work again once it is back (with its sessions lost, see above) |
//! | no reply within the response timeout | [`Error::Timeout`]; `503` as well |
//! | an item above the item size limit | [`Error::TooLarge`], checked before sending; nothing is written and the previous record is intact; the layer answers `413` |
//! | an item under the prefix that is not a session of this store, or cut | [`Error::Decode`], never a panic; the layer starts a fresh session under a new ID |
//! | a record or item layout of a newer build | [`Error::Decode`]; the layer answers `503` with `Retry-After: 1` (during a rolling upgrade, an instance of the newer build can read it) |
//!
//! [`Error::Backend`]: session_core::Error::Backend
//! [`Error::Timeout`]: session_core::Error::Timeout
//! [`Error::TooLarge`]: session_core::Error::TooLarge
//! [`Error::Decode`]: session_core::Error::Decode

mod builder;
mod client;
mod codec;
mod error;
mod pool;
mod ring;
mod store;
mod user_index;

pub use builder::{DEFAULT_MAX_ITEM_SIZE, MemcachedStoreBuilder};
pub use store::MemcachedStore;
