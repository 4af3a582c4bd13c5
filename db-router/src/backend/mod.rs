//! What the router needs to know about each database.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

use crate::token::Position;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The connect options type of a database's connections.
pub type ConnectOptionsOf<DB> = <<DB as Database>::Connection as Connection>::Options;

/// A sqlx database the router can route: PostgreSQL, MySQL/MariaDB and
/// SQLite, each behind its feature.
///
/// The trait is sealed; its methods (read-only session setup, position and
/// lag queries) are internal.
pub trait RoutedDatabase: private::Backend {}

impl<DB: private::Backend> RoutedDatabase for DB {}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) mod private {
    use super::*;

    /// What one health probe learned about a replica.
    #[derive(Clone, Debug, Default)]
    pub struct ReplicaProbe {
        /// The replica's replay position, if it reports one.
        pub replay: Option<Position>,
        /// Bytes between the primary's position and the replay position.
        pub lag_bytes: Option<u64>,
        /// How far behind the replica's applied data is in time.
        pub lag: Option<Duration>,
        /// Replication is configured but not running.
        pub stalled: bool,
        /// The replay position includes the primary's position read just
        /// before: everything the primary had written then is applied.
        pub caught_up: bool,
    }

    /// Per-database behaviour. Sealed: implemented for the sqlx drivers only.
    pub trait Backend: Database {
        /// Whether the database reports replication positions at all; when
        /// `false`, tokens carry only the write time and no query is made.
        const HAS_POSITIONS: bool;

        /// The OpenTelemetry `db.system` value of the database.
        const SYSTEM: &'static str;

        /// The server (host, port) `options` connect to, for the
        /// `server.address` and `server.port` of traces; `None` for a file.
        fn server(options: &ConnectOptionsOf<Self>) -> Option<(&str, u16)>;

        /// Connect options whose sessions refuse writes, when the driver can
        /// set that at connect time.
        fn read_only_connect_options(options: ConnectOptionsOf<Self>) -> ConnectOptionsOf<Self>;

        /// Pool options whose connections refuse writes, for drivers that
        /// need a statement after connecting.
        fn read_only_pool_options(options: PoolOptions<Self>) -> PoolOptions<Self>;

        /// The primary's current position.
        fn primary_position(
            conn: &mut Self::Connection,
        ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>>;

        /// The replica's replay position.
        fn replay_position(
            conn: &mut Self::Connection,
        ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>>;

        /// Health and lag of a replica, given the primary's position read
        /// just before.
        fn probe_replica(
            conn: &mut Self::Connection,
            primary: Option<Position>,
        ) -> BoxFuture<'_, Result<ReplicaProbe, sqlx::Error>>;
    }
}

pub(crate) use private::{Backend, ReplicaProbe};
