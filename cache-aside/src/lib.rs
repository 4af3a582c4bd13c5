//! Cache-aside for a fleet of instances: look in the cache, on a miss load
//! from the source of truth, store, return — without stampedes, without
//! serving values that were invalidated, and without hanging on a dead Redis.
//!
//! A [`Cache`] has up to two tiers, in front of a [`Loader`]:
//!
//! * **L1**, in process, on [`moka::future::Cache`](https://docs.rs/moka)
//!   (feature `moka`): bounded, per-entry TTL, nanoseconds per hit;
//! * **L2**, shared by every instance, on Redis (feature `redis`), through a
//!   `redis::aio::ConnectionManager` that reconnects by itself.
//!
//! Use L1 only, L2 only, or both (the usual setup: a short L1 TTL in front of
//! a longer L2 TTL). The tiers are called L1 and L2 throughout: in the
//! builder ([`CacheBuilder::with_l1`], `with_redis` for L2), in
//! [`CacheStats`] (`l1_hits`, `l2_hits`, …) and in these docs; "Redis" is
//! used where the server itself is meant (its commands, timeouts, errors).
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "moka")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use cache_aside::{CacheBuilder, from_fn};
//!
//! // The source of truth: a database query in real code.
//! let loader = from_fn(|id: u64| async move {
//!     Ok::<_, std::io::Error>((id != 404).then(|| format!("product {id}")))
//! });
//!
//! // Defaults: 60 s TTL with 10 % jitter, 5 s negative entries.
//! let products = CacheBuilder::new("products").with_l1(10_000).build(loader);
//! assert_eq!(products.get(&7).await?.as_deref(), Some("product 7"));
//! assert_eq!(products.get(&404).await?, None); // cached as absent
//! products.get(&7).await?;
//! assert_eq!(products.stats().loads, 2);
//!
//! // Customised: shorter TTL, longer negative entries, early refresh.
//! let loader = from_fn(|id: u64| async move { Ok::<_, std::io::Error>(Some(id * 2)) });
//! let doubled = CacheBuilder::new("doubled")
//!     .with_l1(1_000)
//!     .with_ttl(Duration::from_secs(30))
//!     .with_jitter(0.2)
//!     .with_negative_ttl(Duration::from_secs(60))
//!     .with_early_refresh(1.0)
//!     .build(loader);
//! let many = doubled.get_many([1, 2, 3]).await?; // one loader call
//! assert_eq!(many[&3], 6);
//! doubled.invalidate(&3).await?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "moka"))]
//! # fn main() {}
//! ```
//!
//! With L2 (feature `redis`), start from a URL, or from a `redis::Client`
//! the application already has; keys then need
//! `Display + Serialize + DeserializeOwned` and values
//! `Serialize + DeserializeOwned`:
//!
//! ```
//! # #[cfg(feature = "full")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let url = "redis://127.0.0.1:6379";
//! use cache_aside::{CacheBuilder, from_fn};
//!
//! let loader = from_fn(|id: u64| async move { Ok::<_, std::io::Error>(Some(id * 2)) });
//! let from_url = CacheBuilder::new("doubled")
//!     .with_l1(1_000)
//!     .with_redis_url(url)?
//!     .build(loader);
//!
//! let client = redis::Client::open(url)?; // the application's own client
//! let loader = from_fn(|id: u64| async move { Ok::<_, std::io::Error>(Some(id * 3)) });
//! let from_client = CacheBuilder::new("tripled").with_redis(client).build(loader);
//! # let _ = (from_url, from_client);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "full"))]
//! # fn main() {}
//! ```
//!
//! The connection opens lazily: building succeeds while Redis is down. This
//! crate never installs a process-wide rustls crypto provider; for
//! `rediss://`, see [`CacheBuilder::with_redis_url`].
//!
//! # Features
//!
//! No feature is on by default.
//!
//! | feature | enables |
//! |---------|---------|
//! | `moka`  | L1, in process: [`CacheBuilder::with_l1`], `with_l1_ttl` |
//! | `redis` | L2, on Redis: `CacheBuilder::with_redis`, `with_redis_url` and their options, `Cache::is_subscribed` |
//! | `full`  | both |
//! | `metrics` | [`Cache::stats`]'s counters and the loader's latency as [`metrics`](https://docs.rs/metrics) (facade only, no exporter) |
//!
//! Without any tier a [`Cache`] still coalesces concurrent loads.
//!
//! # What it guarantees
//!
//! * **One load per key.** Concurrent misses of a key in one process share
//!   one loader call. Across instances, the first miss takes a short lease
//!   in Redis (`SET NX PX` with a random token); the others poll Redis with
//!   backoff and read the value it stores. A crashed holder's lease expires
//!   ([`CacheBuilder::with_lease_ttl`]); a waiter that waited too long loads
//!   by itself.
//! * **Invalidation wins over slow fills.** [`Cache::invalidate`] bumps the
//!   key's generation in Redis, deletes the value and publishes the key on a
//!   channel; every instance drops it from L1. A fill stores its value only if
//!   the generation it saw before loading is unchanged, checked atomically by
//!   a Lua script, and L1 inserts are guarded by an L1 generation. When the
//!   subscription reconnects, L1 is flushed, since messages may have been
//!   missed; the short L1 TTL bounds staleness if one is lost anyway.
//! * **Errors are not cached.** Every caller coalesced on a failed load gets
//!   the same [`Error::Load`]; the next call tries again.
//! * **A dead Redis costs at most one timeout.** Every command is bounded
//!   ([`CacheBuilder::with_redis_timeout`]); after a failure, reads bypass
//!   L2 for a while ([`CacheBuilder::with_retry_after`]) and go to the
//!   loader ([`FailMode::Open`], the default) or fail fast
//!   ([`FailMode::Closed`]).
//! * **No synchronized expiry.** TTLs carry random jitter; negative entries
//!   have their own TTL; optional early refresh (XFetch) renews hot keys
//!   before they expire.
//!
//! [`Cache::stats`] counts hits and misses per tier, loads, load errors,
//! lease waits and Redis errors; with the `metrics` feature the same
//! counters, labelled by cache name, and the loader's latency go to the
//! [`metrics`](https://docs.rs/metrics) facade (names in
//! `docs/observability.md`; install the recorder before building caches).
//! Loads, fills and invalidations run in `tracing` spans (`cache_aside.*`).
//!
//! # Redis layout
//!
//! For a cache named `name` and a key `k` (its `Display` form):
//! `name:{k}:v` holds the value, `name:{k}:g` the generation, `name:{k}:l`
//! the lease; invalidations travel on the channel `name:invalidate`. Redis
//! must not evict generation keys before they expire (avoid `allkeys-*`
//! eviction policies for the cache's database).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod cache;
#[cfg(feature = "moka")]
mod clock;
#[cfg(feature = "redis")]
mod codec;
mod entry;
mod error;
mod flight;
#[cfg(feature = "moka")]
mod l1;
#[cfg(feature = "redis")]
mod l2;
mod loader;
mod metrics;
mod settings;
mod stats;

pub use builder::CacheBuilder;
pub use cache::Cache;
pub use error::{BoxError, ConfigError, Error, SharedError};
pub use loader::{FnLoader, Loader, from_fn};
pub use settings::FailMode;
pub use stats::CacheStats;

/// Compiles the README's example (shown on crates.io) as a doctest.
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
