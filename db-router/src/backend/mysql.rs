//! MySQL and MariaDB: read-only sessions through `SET SESSION TRANSACTION
//! READ ONLY`, lag from the replica status, MariaDB GTID positions.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::pool::PoolOptions;
use sqlx::{Executor, MySql, Row};

use super::{Backend, BoxFuture, ReplicaProbe};
use crate::token::{GtidPosition, Position};

/// Runs a `SELECT @@variable` that only MariaDB knows; MySQL answers with
/// an "unknown system variable" error, which means "no position".
async fn gtid_variable(
    conn: &mut MySqlConnection,
    sql: &'static str,
) -> Result<Option<Position>, sqlx::Error> {
    let value: Option<String> = match sqlx::query_scalar(sql).fetch_one(&mut *conn).await {
        Ok(value) => value,
        Err(sqlx::Error::Database(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(value
        .and_then(|v| GtidPosition::parse_mariadb(&v).ok().flatten())
        .map(Position::Gtid))
}

/// Reads an integer column of a text-protocol row; `None` when the column
/// is missing, `Some(None)` when it is NULL.
fn column_u64(row: &MySqlRow, name: &str) -> Option<Option<u64>> {
    row.try_column(name).ok()?;
    let text: Option<String> = row.try_get_unchecked(name).ok()?;
    Some(text.and_then(|t| t.trim().parse().ok()))
}

impl Backend for MySql {
    const HAS_POSITIONS: bool = true;
    const SYSTEM: &'static str = "mysql";

    fn server(options: &MySqlConnectOptions) -> Option<(&str, u16)> {
        Some((options.get_host(), options.get_port()))
    }

    fn read_only_connect_options(options: MySqlConnectOptions) -> MySqlConnectOptions {
        options
    }

    fn read_only_pool_options(options: PoolOptions<MySql>) -> PoolOptions<MySql> {
        options.after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                Ok(())
            })
        })
    }

    fn primary_position(
        conn: &mut MySqlConnection,
    ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>> {
        Box::pin(gtid_variable(
            conn,
            "SELECT CAST(@@gtid_binlog_pos AS CHAR)",
        ))
    }

    fn replay_position(
        conn: &mut MySqlConnection,
    ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>> {
        Box::pin(gtid_variable(conn, "SELECT CAST(@@gtid_slave_pos AS CHAR)"))
    }

    fn probe_replica(
        conn: &mut MySqlConnection,
        _primary: Option<Position>,
    ) -> BoxFuture<'_, Result<ReplicaProbe, sqlx::Error>> {
        Box::pin(async move {
            // Text protocol on purpose: not every server prepares SHOW.
            let row = match conn.fetch_optional("SHOW REPLICA STATUS").await {
                Ok(row) => row,
                Err(sqlx::Error::Database(_)) => conn.fetch_optional("SHOW SLAVE STATUS").await?,
                Err(e) => return Err(e),
            };
            let Some(row) = row else {
                // Not replicating from anything: a plain server.
                return Ok(ReplicaProbe::default());
            };
            let seconds = column_u64(&row, "Seconds_Behind_Master")
                .or_else(|| column_u64(&row, "Seconds_Behind_Source"))
                .flatten();
            let replay = Self::replay_position(conn).await?;
            Ok(ReplicaProbe {
                replay,
                lag_bytes: None,
                lag: seconds.map(Duration::from_secs),
                // NULL seconds: the replication threads are not running.
                stalled: seconds.is_none(),
                // The seconds behind are measured against the relay log,
                // not the age of the last event, so they need no bound.
                caught_up: false,
            })
        })
    }
}
