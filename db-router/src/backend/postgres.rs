//! PostgreSQL: read-only sessions via a startup parameter, positions as
//! WAL LSNs.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::{Backend, BoxFuture, ReplicaProbe};
use crate::token::{Lsn, Position};

fn parse_lsn(text: Option<String>) -> Option<Position> {
    text.and_then(|t| t.parse::<Lsn>().ok()).map(Position::Lsn)
}

/// Runs a query that returns one LSN as text (NULL: no position).
async fn lsn_query(
    conn: &mut PgConnection,
    sql: &'static str,
) -> Result<Option<Position>, sqlx::Error> {
    let lsn: Option<String> = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
    Ok(parse_lsn(lsn))
}

impl Backend for Postgres {
    const HAS_POSITIONS: bool = true;
    const SYSTEM: &'static str = "postgresql";

    fn server(options: &PgConnectOptions) -> Option<(&str, u16)> {
        Some((options.get_host(), options.get_port()))
    }

    fn read_only_connect_options(options: PgConnectOptions) -> PgConnectOptions {
        // Sent in the startup packet: every transaction of the session,
        // including single autocommit statements, is read-only.
        options.options([("default_transaction_read_only", "on")])
    }

    fn read_only_pool_options(options: PoolOptions<Postgres>) -> PoolOptions<Postgres> {
        options
    }

    fn primary_position(
        conn: &mut PgConnection,
    ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>> {
        Box::pin(lsn_query(conn, "SELECT pg_current_wal_lsn()::text"))
    }

    fn replay_position(
        conn: &mut PgConnection,
    ) -> BoxFuture<'_, Result<Option<Position>, sqlx::Error>> {
        Box::pin(lsn_query(conn, "SELECT pg_last_wal_replay_lsn()::text"))
    }

    fn probe_replica(
        conn: &mut PgConnection,
        primary: Option<Position>,
    ) -> BoxFuture<'_, Result<ReplicaProbe, sqlx::Error>> {
        Box::pin(async move {
            let (in_recovery, replay, replay_age): (bool, Option<String>, Option<f64>) =
                sqlx::query_as(
                    "SELECT pg_is_in_recovery(), \
                            pg_last_wal_replay_lsn()::text, \
                            EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8",
                )
                .fetch_one(&mut *conn)
                .await?;
            if !in_recovery {
                // Not a standby: positions from the primary mean nothing here.
                return Ok(ReplicaProbe::default());
            }
            let replay = parse_lsn(replay);
            let caught_up = matches!((&primary, &replay), (Some(p), Some(r)) if r.includes(p));
            let (lag_bytes, lag) = match (&primary, &replay) {
                (Some(primary), Some(replay)) => {
                    let bytes = primary.bytes_after(replay);
                    if replay.includes(primary) {
                        // Caught up: the last replayed transaction may be old
                        // simply because the primary has been idle.
                        (bytes, Some(Duration::ZERO))
                    } else {
                        (bytes, replay_age.map(secs_to_duration))
                    }
                }
                _ => (None, replay_age.map(secs_to_duration)),
            };
            Ok(ReplicaProbe {
                replay,
                lag_bytes,
                lag,
                stalled: false,
                caught_up,
            })
        })
    }
}

fn secs_to_duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}
