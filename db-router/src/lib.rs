//! Read/write routing over [sqlx] pools for horizontally scaled apps:
//! writes and transactions on the primary, reads on replicas, and users who
//! always see their own writes.
//!
//! A [`DbRouter`] holds the primary pool and any number of replicas and
//! hands out plain sqlx values for a role:
//!
//! | call                                          | gives                                | runs on                                        |
//! |-----------------------------------------------|--------------------------------------|------------------------------------------------|
//! | [`write_pool()`](DbRouter::write_pool)        | `&Pool<DB>`                          | the primary                                    |
//! | [`begin()`](DbRouter::begin)                  | `Transaction<'static, DB>`           | the primary                                    |
//! | [`reader()`](DbRouter::reader)                | `PoolConnection<DB>`, read-only      | a usable replica, else the primary             |
//! | [`reader_with(token)`](DbRouter::reader_with) | the same, at least as new as `token` | a replica that has caught up, else the primary |
//! | [`read_pool(token)`](DbRouter::read_pool)     | `&Pool<DB>`, read-only               | as `reader_with`, without taking a connection  |
//!
//! Each of these counts in [`Stats`]. For work that should not be counted
//! (migrations, administration), [`primary_pool()`](DbRouter::primary_pool),
//! [`primary_read_pool()`](DbRouter::primary_read_pool) and
//! [`replica_pools()`](DbRouter::replica_pools) give the pools as they are.
//!
//! * **Replica choice**: round-robin or least busy ([`Selection`]).
//! * **Health**: a background task probes every replica (short timeout,
//!   jittered interval), bans failing ones and re-admits them once they
//!   answer again; a replica that fails a read is banned on the spot. With
//!   no usable replica reads fall back to the primary, or fail if so
//!   configured ([`ReadFallback`]); every fallback is counted by reason.
//! * **Lag**: measured in time and, on PostgreSQL, WAL bytes; replicas over
//!   the limit are skipped. While the primary's position cannot be read
//!   (the primary is down), a replica keeps its last lag verdict, so reads
//!   stay on it instead of falling back to the primary that is gone.
//! * **Read-your-writes**: after a write, [`DbRouter::write_token`] turns
//!   the primary's position (PostgreSQL LSN, MariaDB GTID) into a
//!   [`CausalToken`]; reads carrying it only use replicas that replayed that
//!   far. Without positions (SQLite, and MySQL, whose `uuid:1-n` GTID
//!   sets are not supported: see the README) the token holds the time of
//!   the write and reads stay on the primary for a window.
//! * **Guard**: every read connection is read-only on the server side
//!   (PostgreSQL `default_transaction_read_only`, MySQL `SET SESSION
//!   TRANSACTION READ ONLY`, SQLite `PRAGMA query_only`), including reads
//!   that fall back to the primary: they use a separate read-only pool to
//!   it. A write sent down a reader fails loudly.
//! * **Tower**: [`RouterLayer`] picks the role per request (`GET`, `HEAD`,
//!   `OPTIONS` read), gives handlers a [`DbHandle`], and carries the
//!   causal token to the user's next request in a cookie, a header, or any
//!   [`TokenCarrier`] (the user's session: `SessionCarrier`, feature
//!   `session`).
//! * **Observability**: [`DbRouter::stats`] and `tracing` events (bans,
//!   re-admissions, fallbacks, tokens).
//!
//! Without replicas every read uses the primary's read-only pool, so a
//! single SQLite file (or an in-memory database) is a valid setup:
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use db_router::{DbRouter, Selection};
//!
//! let primary = sqlx::SqlitePool::connect("sqlite::memory:").await?;
//! let router = DbRouter::builder(primary)
//!     // .with_replica_url("sqlite://replica.db")  // as many as you have
//!     .with_selection(Selection::LeastBusy)
//!     .build()
//!     .await?;
//!
//! sqlx::query("CREATE TABLE users (name TEXT)").execute(router.write_pool()).await?;
//! let mut tx = router.begin().await?;
//! sqlx::query("INSERT INTO users VALUES ('ada')").execute(&mut *tx).await?;
//! tx.commit().await?;
//! let token = router.write_token().await?;
//!
//! let mut conn = router.reader_with(Some(&token)).await?;
//! let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
//!     .fetch_one(&mut *conn)
//!     .await?;
//! assert_eq!(n, 1);
//!
//! // Readers refuse writes.
//! assert!(sqlx::query("DELETE FROM users").execute(&mut *conn).await.is_err());
//! assert_eq!(router.stats().writes, 2);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! With PostgreSQL replicas:
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use db_router::DbRouter;
//!
//! let primary = sqlx::PgPool::connect("postgres://app@db-primary/app").await?;
//! let router = DbRouter::builder(primary)
//!     .with_replica_url("postgres://app@db-replica-1/app")
//!     .with_replica_url("postgres://app@db-replica-2/app")
//!     .with_max_lag(Some(Duration::from_secs(5)))
//!     .with_token_wait(Duration::from_millis(50), Duration::from_millis(5))
//!     .build()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! No feature is on by default.
//!
//! | feature    | enables                                                         |
//! |------------|-----------------------------------------------------------------|
//! | `postgres` | PostgreSQL: LSN tokens, lag in bytes and time                   |
//! | `mysql`    | MySQL and MariaDB: lag from replica status, MariaDB GTID tokens |
//! | `sqlite`   | SQLite: a single file or in-memory database as the primary      |
//! | `axum`     | [`DbHandle`] as an axum extractor                               |
//! | `session`  | `SessionCarrier`: the causal token kept in a `session_core::Session` |
//! | `full`     | all of the above                                                |
//! | `metrics`  | reads by role and replica, fallbacks, lag, bans, token waits, writes through the [`metrics`](https://docs.rs/metrics) facade (names in `docs/observability.md`) |
//!
//! # Caveats
//!
//! * PostgreSQL tokens use `pg_current_wal_lsn()`. With
//!   `synchronous_commit = off` a commit may not be written out yet when the
//!   token is taken, so read-your-writes is only as strong as the commit.
//! * A causal token comes from the client; a forged one can at worst make
//!   that client's reads go to the primary.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod builder;
mod error;
mod fallback;
mod health;
pub mod layer;
mod metrics;
mod replica;
mod router;
mod source;
mod stats;
pub mod token;

pub use backend::{ConnectOptionsOf, RoutedDatabase};
pub use builder::RouterBuilder;
pub use error::{BoxError, Error, Result};
pub use fallback::{FallbackReason, ReadFallback};
#[cfg(feature = "axum")]
pub use layer::MissingRouterLayer;
#[cfg(feature = "session")]
#[cfg_attr(docsrs, doc(cfg(feature = "session")))]
pub use layer::SessionCarrier;
pub use layer::{CookieCarrier, DbHandle, HeaderCarrier, RouterLayer, RouterService, TokenCarrier};
pub use router::{DbRouter, MAX_REPLICAS, Role, Selection};
pub use source::ReadSource;
pub use stats::{Fallbacks, ReplicaStats, Stats};
pub use token::{CausalToken, Gtid, GtidPosition, Lsn, MYSQL_GTID_SET, ParseTokenError, Position};

/// The README's example, compiled with the doctests.
#[cfg(all(doctest, feature = "postgres"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
