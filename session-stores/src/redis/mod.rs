//! The Redis store: single node, Redis Cluster, TLS and ACL users.
//!
//! [`RedisStore`] keeps each session in one Redis string and does every
//! write as one atomic Lua script, so saves are compare-and-set on the
//! record's version across any number of app instances.
//!
//! # Connecting
//!
//! From URLs, with the store opening its own connection:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use session_core::SessionLayer;
//! use session_stores::RedisStore;
//!
//! # async fn run() -> session_core::Result<()> {
//! // Defaults: keys `sess:{<id>}`, 1 s connection and response timeouts.
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let layer = SessionLayer::new(store);
//!
//! // TLS with a private CA, an ACL user, and a prefix of our own. The
//! // application chooses rustls's crypto provider, once, at startup.
//! let _ = rustls::crypto::ring::default_provider().install_default();
//! let ca = std::fs::read("/etc/redis/ca.crt").expect("CA certificate");
//! let store = RedisStore::builder()
//!     .with_key_prefix("shop:session:")
//!     .with_tls_root_cert_pem(ca)
//!     .with_response_timeout(Duration::from_millis(300))
//!     .connect("rediss://app:secret@redis.internal:6380")
//!     .await?;
//!
//! // Redis Cluster: any reachable nodes; the rest is discovered.
//! let store = RedisStore::connect_cluster([
//!     "redis://10.0.0.1:6379",
//!     "redis://10.0.0.2:6379",
//!     "redis://10.0.0.3:6379",
//! ])
//! .await?;
//! # let _ = (layer, store);
//! # Ok(())
//! # }
//! ```
//!
//! From a client or connection the application already has (see
//! [`RedisStoreBuilder`] for which settings apply to each):
//!
//! ```no_run
//! use session_stores::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A client: the store opens its own connection from it, with the
//! // builder's timeouts (and near cache, if asked for).
//! let client = redis::Client::open("redis://127.0.0.1:6379")?;
//! let store = RedisStore::builder().connect_with_client(client.clone()).await?;
//!
//! // An open connection, shared with the application's own commands.
//! let conn = client.get_connection_manager().await?;
//! let store = RedisStore::builder().build_with_connection(conn)?;
//!
//! // The same for a Redis Cluster.
//! let cluster = redis::cluster::ClusterClient::new(["redis://10.0.0.1:6379"])?;
//! let store = RedisStore::builder()
//!     .connect_with_cluster_client(cluster.clone())
//!     .await?;
//! let conn = cluster.get_async_connection().await?;
//! let store = RedisStore::builder().build_with_cluster_connection(conn)?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # TLS
//!
//! `rediss://` connections use rustls, which needs a process-wide crypto
//! provider. Choosing it is the application's business, so the store never
//! installs one: install it at startup, before connecting, e.g. with
//! `rustls::crypto::ring::default_provider().install_default()` (rustls's
//! `ring` feature) or `rustls::crypto::aws_lc_rs::default_provider()`. If
//! none is installed, connecting over TLS fails with an
//! [`Error::Backend`] that says so.
//!
//! # Layout
//!
//! A session lives under the key `<prefix>{<id>}` (default prefix
//! `sess:`). The braces are a Cluster hash tag, so every key of one
//! session maps to one hash slot. The key holds one string:
//!
//! ```text
//! <version>:<expiry>:<token>:<record>
//! ```
//!
//! | part | content |
//! |------|---------|
//! | version | the record's version, in decimal |
//! | expiry | the expiry in milliseconds since the Unix epoch (empty: none) |
//! | token | a token naming the last write (a random prefix per store handle, then a count), so that a write the client retries after a lost reply is recognised as already done |
//! | record | the record as written by [`Record::encode`](session_core::store::Record::encode) |
//!
//! One string rather than a hash of those four fields: a load is one
//! `GET`, and a session costs Redis its key and one allocation for the
//! value (a hash with a field over `hash-max-listpack-value` bytes is a
//! hash table, about a fifth larger for a 1 KB record).
//!
//! A user's session index (listing and revoking a user's sessions,
//! [`Session::bind_user`](session_core::Session::bind_user)) lives under
//! `<prefix>user:{<user key>}` ([`RedisStore::user_index_key`], the user
//! key being [`user_key`](session_core::store::user_key)): a hash with
//! the fields `v` (version), `e` (expiry, absent for none) and `d` (the
//! index as session-core encodes it), changed only by compare-and-set
//! scripts on `v`. It need not share a Cluster slot with its sessions: session-core
//! orders its writes so that no command ever spans two keys (the index
//! entry before the bound record, the record's deletion before the
//! entry's), which also spreads one user's sessions over the cluster.
//!
//! The expiry is also the key's TTL (`PEXPIREAT`, to the millisecond), so
//! Redis evicts expired sessions by itself; a session without expiry has
//! no TTL. Reads filter on the stored expiry as well, so a record past its
//! expiry is never returned even if the clocks of Redis and the app differ.
//!
//! # Cost
//!
//! | operation | Redis commands |
//! |-----------|----------------|
//! | `load`    | 1 (`GET`); none when served by the [near cache](#near-cache), `GET` + `PTTL` in one round trip when it fills it |
//! | `create`, `save`, `touch` | 1 (`EVALSHA`; `EVAL` once more after a `NOSCRIPT` reply, e.g. after a restart or failover); with [durable writes](#durable-writes) `WAIT` in the same round trip |
//! | `delete`  | 1 (`DEL`); with durable writes `WAIT` in the same round trip |
//! | user index: load, save, delete | 1 (`HMGET`), 1 (`EVALSHA`), 1 (`EVALSHA`) |
//!
//! Through the [`SessionLayer`](session_core::SessionLayer) a request that
//! only reads its session costs one command, a request that changes it two
//! (load and save; one for a new session), and a request that does not use
//! its session none.
//!
//! # Near cache
//!
//! [`RedisStoreBuilder::with_near_cache`] keeps recently read sessions in
//! the app's process, so a read-only request for one of them makes no
//! round trip at all. Redis itself tells the connection when another
//! client changes a cached key (`CLIENT TRACKING` over RESP3), and writes
//! stay compare-and-set in Redis, so no update is lost. The price is that
//! a read may miss another instance's write for up to the near-cache TTL
//! (default 2 s, usually far less); the builder method documents the exact
//! guarantees. Sessions bound to a user are the exception: they are always
//! read from Redis (a cached read of one is followed by a read from
//! Redis), so a session revoked on any instance is anonymous on its next
//! request everywhere, even if an invalidation was overtaken or lost.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! let store = session_stores::RedisStore::builder()
//!     .with_near_cache(100_000)
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Redis Cluster
//!
//! The cluster client follows `MOVED` (refreshing its slot map) and `ASK`
//! redirections by itself. A redirected command has not run, so `create`'s
//! insert-only check still runs exactly once, atomically, on the node that
//! owns the slot. If a connection drops after a write ran but before its
//! reply arrived, the client sends it again; the write token in `w` lets
//! the script answer "done" instead of reporting a conflict, so an update
//! is never applied twice.
//!
//! On failover, Redis replicates asynchronously: a write acknowledged by a
//! master in the last moment before it crashed may be missing on the
//! promoted replica, and that session is then read as it was before the
//! write, unless writes are [durable](#durable-writes). Reads and new sessions work again once a replica has been
//! promoted and the client has refreshed its slot map (about
//! `cluster-node-timeout` plus a second).
//!
//! # Durable writes
//!
//! Redis replicates asynchronously: by default a write is acknowledged
//! once the primary has it, and a failover in the next moment can lose it.
//! [`RedisStoreBuilder::with_wait_replicas`] makes every write wait (with
//! `WAIT`, pipelined after it) until that many replicas have it, and fail
//! with `503` when they do not confirm in time, so no success is reported
//! that a failover could undo. The method documents the cost.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! use std::time::Duration;
//!
//! let store = session_stores::RedisStore::builder()
//!     .with_wait_replicas(1, Duration::from_millis(200))
//!     .connect("redis://primary.sessions.internal:6379")
//!     .await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Failover without a cluster
//!
//! - **A primary endpoint** (ElastiCache's, or any name moved to the
//!   promoted replica): [`RedisStore::connect`] follows it. A node that
//!   was demoted answers writes with `READONLY`; the store then opens a new
//!   connection to the URL, checks with `ROLE` that it reached a primary,
//!   and sends the command again. Every command of the store is safe to
//!   repeat (the scripts recognise their own write by its token).
//! - **Redis Sentinel**: [`RedisStoreBuilder::connect_sentinel`] asks the
//!   Sentinels for the master and, when it stops answering or answers
//!   `READONLY`, asks again and moves to the promoted replica.
//!
//! In both cases calls fail with `503` from the fault until a primary is
//! reachable again, then work without a restart. A connection of your own
//! ([`RedisStoreBuilder::build_with_connection`]) is used as it is and not
//! replaced.
//!
//! # Failures
//!
//! | situation | result |
//! |-----------|--------|
//! | Redis down, refused, reset | [`Error::Backend`]; the layer answers `503` with `Retry-After: 1`. The single-node connection reconnects in the background, the cluster connection refreshes its topology; later calls work again without a restart |
//! | no reply within the response timeout | [`Error::Timeout`]; `503` as well. The layer's own store timeout bounds each call too |
//! | the node is no longer the primary (`READONLY`), or through Sentinel the master failed | the store reconnects to the primary and sends the command again; [`Error::Backend`] (`503`) while none is reachable |
//! | with durable writes, fewer replicas confirm a write in time | [`Error::Backend`] ("not known to be durable"): `503` |
//! | a record above Redis's 512 MB value limit | rejected by Redis: [`Error::Backend`] (the store sets no lower limit of its own) |
//! | a key under the prefix that does not hold a session, or a damaged record | [`Error::Decode`], never a panic; the layer starts a fresh session under a new ID and leaves the key as it is |
//! | a record in a format of a newer build | [`Error::Decode`]; the layer answers `503` with `Retry-After: 1` (during a rolling upgrade, an instance of the newer build can read it) |
//!
//! [`Error::Backend`]: session_core::Error::Backend
//! [`Error::Timeout`]: session_core::Error::Timeout
//! [`Error::Decode`]: session_core::Error::Decode

mod builder;
mod connection;
mod durable;
mod error;
mod failover;
mod near_cache;
mod scripts;
mod session_value;
mod store;
mod tls;
mod user_index;

pub use builder::RedisStoreBuilder;
pub use store::RedisStore;
