//! Connecting: the primary and the replicas of the configured database,
//! migrated, behind a [`DbRouter`].

use std::path::Path;
use std::time::Duration;

use db_router::DbRouter;
use sqlx::mysql::MySql;
use sqlx::pool::PoolOptions;
use sqlx::postgres::Postgres;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Database, Pool};

use super::backend::Backend;
use super::repo::Repo;
use crate::error::StartError;

/// The database router of the configured backend.
#[derive(Debug, Clone)]
pub enum Routers {
    /// SQLite.
    Sqlite(DbRouter<Sqlite>),
    /// PostgreSQL.
    Postgres(DbRouter<Postgres>),
    /// MySQL or MariaDB.
    MySql(DbRouter<MySql>),
}

fn bad_url(var: &'static str, e: impl std::fmt::Display) -> StartError {
    StartError::new(var, e.to_string())
}

/// Connects the primary at `url` (checking that it answers), runs the
/// migrations, and builds the router over the `replicas` (checking that
/// they answer). Without a URL, the primary is the SQLite file `shop.db`
/// in `data_dir`.
///
/// # Errors
///
/// A database that cannot be reached or migrated, naming its variable.
pub async fn connect(
    url: Option<&str>,
    replicas: &[String],
    data_dir: &Path,
) -> Result<Routers, StartError> {
    match url.map(Backend::of_url).transpose() {
        Err(e) => Err(bad_url("DATABASE_URL", e)),
        Ok(None | Some(Backend::Sqlite)) => open_sqlite(url, replicas, data_dir)
            .await
            .map(Routers::Sqlite),
        Ok(Some(Backend::Postgres)) => open_server(url, replicas).await.map(Routers::Postgres),
        Ok(Some(Backend::MySql)) => open_server(url, replicas).await.map(Routers::MySql),
    }
}

/// The connection options of `DB`.
type Options<DB> = <<DB as Database>::Connection as sqlx::Connection>::Options;

/// The options of `url`, or an error naming `var`.
fn parse<DB: Repo>(var: &'static str, url: &str) -> Result<Options<DB>, StartError> {
    url.parse().map_err(|e| bad_url(var, e))
}

fn parse_replicas<DB: Repo>(urls: &[String]) -> Result<Vec<Options<DB>>, StartError> {
    urls.iter()
        .map(|url| parse::<DB>("DATABASE_REPLICA_URLS", url))
        .collect()
}

/// SQLite: the file `url` names, or `shop.db` in `data_dir`, created when
/// missing; write-ahead log; one connection kept open.
async fn open_sqlite(
    url: Option<&str>,
    replicas: &[String],
    data_dir: &Path,
) -> Result<DbRouter<Sqlite>, StartError> {
    let primary = match url {
        Some(url) => parse::<Sqlite>("DATABASE_URL", url)?,
        None => SqliteConnectOptions::new().filename(data_dir.join("shop.db")),
    };
    let tune = |o: SqliteConnectOptions| {
        o.create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
    };
    let replicas = parse_replicas::<Sqlite>(replicas)?;
    let pool = PoolOptions::<Sqlite>::new()
        // An in-memory database lives as long as one connection.
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None);
    open(
        pool,
        tune(primary),
        replicas.into_iter().map(tune).collect(),
    )
    .await
}

/// A database server (PostgreSQL, MySQL/MariaDB) at `url`, with the
/// pool's default settings.
async fn open_server<DB: Repo>(
    url: Option<&str>,
    replicas: &[String],
) -> Result<DbRouter<DB>, StartError> {
    let primary = parse::<DB>("DATABASE_URL", url.unwrap_or_default())?;
    let replicas = parse_replicas::<DB>(replicas)?;
    open(PoolOptions::new(), primary, replicas).await
}

/// SQLite's `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6).
fn is_busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "5" || code == "6")
}

/// Applies the migrations, trying again when an attempt fails.
///
/// PostgreSQL and MariaDB serialise concurrent migrators with a lock, but
/// SQLite has none: instances that start together on a new file all apply
/// the migrations, and all but the first fail on what the first created.
/// Each migration is one transaction, so a failed attempt leaves nothing
/// half-done, and the next attempt finds the migrations applied and checks
/// them. A real error fails every attempt and is reported.
async fn migrate_with_retries<DB: Repo>(pool: &Pool<DB>) -> Result<(), StartError> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match DB::migrate(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "migrations failed, trying again");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => {
                return Err(StartError::new(
                    "DATABASE_URL",
                    format!("migrations failed: {e}"),
                ));
            }
        }
    }
}

/// Connects the primary with `pool`'s settings (trying again while SQLite
/// is busy), applies the migrations and builds the router over
/// `replicas`, all of which must answer.
async fn open<DB: Repo>(
    pool: PoolOptions<DB>,
    primary: Options<DB>,
    replicas: Vec<Options<DB>>,
) -> Result<DbRouter<DB>, StartError> {
    let pool = pool
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(5));
    let mut attempt = 0;
    let pool = loop {
        attempt += 1;
        let connecting = pool.clone().connect_with(primary.clone());
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(pool)) => break pool,
            // SQLite answers "database is locked" at once, without waiting
            // for the busy timeout, when another instance is setting up the
            // same new file; that passes.
            Ok(Err(e)) if attempt < 5 && is_busy(&e) => {
                tracing::warn!(error = %e, attempt, "database busy, connecting again");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Ok(Err(e)) => {
                return Err(StartError::new(
                    "DATABASE_URL",
                    format!("cannot connect: {e}"),
                ));
            }
            Err(_) => {
                return Err(StartError::new(
                    "DATABASE_URL",
                    "no answer within 10 s".to_owned(),
                ));
            }
        }
    };
    migrate_with_retries::<DB>(&pool).await?;
    let mut builder = DbRouter::builder(pool)
        .with_max_lag(Some(Duration::from_secs(10)))
        .with_health_interval(Duration::from_secs(1));
    for replica in replicas {
        builder = builder.with_replica(replica);
    }
    let router = builder
        .build()
        .await
        .map_err(|e| StartError::new("DATABASE_REPLICA_URLS", e.to_string()))?;
    if let Some(down) = router.stats().replicas.iter().find(|r| !r.healthy) {
        return Err(StartError::new(
            "DATABASE_REPLICA_URLS",
            format!(
                "{} does not answer: {}",
                down.name,
                down.last_error.as_deref().unwrap_or("unknown error")
            ),
        ));
    }
    Ok(router)
}
