//! SQLite: read-only sessions through `PRAGMA query_only`, no positions.

use sqlx::Sqlite;
use sqlx::pool::PoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::{Backend, BoxFuture, ReplicaProbe};
use crate::token::Position;

impl Backend for Sqlite {
    const HAS_POSITIONS: bool = false;
    const SYSTEM: &'static str = "sqlite";

    fn server(_: &SqliteConnectOptions) -> Option<(&str, u16)> {
        None
    }

    fn read_only_connect_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
        // Set on every new connection; an in-memory database keeps its shared
        // name, so the read pool sees the same data as the primary pool.
        options.pragma("query_only", "ON")
    }

    fn read_only_pool_options(options: PoolOptions<Sqlite>) -> PoolOptions<Sqlite> {
        options
    }

    fn primary_position(
        _conn: &mut SqliteConnection,
    ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>> {
        Box::pin(async { Ok(None) })
    }

    fn replay_position(
        _conn: &mut SqliteConnection,
    ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>> {
        Box::pin(async { Ok(None) })
    }

    fn probe_replica(
        conn: &mut SqliteConnection,
        _primary: Option<Position>,
    ) -> BoxFuture<'_, Result<ReplicaProbe, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            Ok(ReplicaProbe::default())
        })
    }
}
