//! The database: one repository trait implemented for SQLite, PostgreSQL
//! and MariaDB, migrations, and connecting the router.
//!
//! The queries are written once with `$1`-style placeholders, which SQLite
//! and PostgreSQL take as they are; for MySQL/MariaDB they are rewritten to
//! `?` (every query uses each placeholder once, in order). The schemas
//! differ only in types and live under `examples/migrations/<backend>/`;
//! the seed products are a second, generated migration.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use db_router::{DbRouter, RoutedDatabase};
use serde::Serialize;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::mysql::{MySql, MySqlConnectOptions};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AssertSqlSafe, Database, Pool, SqlSafeStr, SqlStr};

use super::catalog::{Product, seed_sql};
use super::config::{Config, StartError};

/// A user as stored, with the password hash.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// The user's ID.
    pub id: i64,
    /// Log-in e-mail, lower case.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// What the profile page shows and saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Log-in e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Delivery addresses, first is the default.
    pub addresses: Vec<String>,
}

/// One line of an order, with the price paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The product.
    pub sku: String,
    /// Its name at the time of the order.
    pub name: String,
    /// How many.
    pub qty: i64,
    /// Unit price in cents.
    pub price_cents: i64,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// The order number.
    pub id: i64,
    /// Sum of the lines, in cents.
    pub total_cents: i64,
    /// Delivery address.
    pub ship_to: String,
    /// When it was placed (Unix time in ms).
    pub created_at_ms: i64,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
}

/// An order in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSummary {
    /// The order number.
    pub id: i64,
    /// Total in cents.
    pub total_cents: i64,
    /// When it was placed (Unix time in ms).
    pub created_at_ms: i64,
}

/// The shop's queries, for each database it runs on.
///
/// Every method takes a connection: a replica or primary connection from
/// [`DbHandle::reader`](db_router::DbHandle::reader), or a transaction on
/// the primary from [`DbHandle::begin`](db_router::DbHandle::begin).
pub trait Repo: RoutedDatabase {
    /// Applies the migrations that are missing.
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send;

    /// Products ordered by SKU.
    fn products(
        conn: &mut Self::Connection,
        offset: i64,
        limit: i64,
    ) -> impl Future<Output = sqlx::Result<Vec<Product>>> + Send;

    /// One product.
    fn product(
        conn: &mut Self::Connection,
        sku: &str,
    ) -> impl Future<Output = sqlx::Result<Option<Product>>> + Send;

    /// Creates a user, returning its ID; a taken e-mail is a unique
    /// violation.
    fn create_user(
        conn: &mut Self::Connection,
        email: &str,
        password_hash: &str,
        name: &str,
    ) -> impl Future<Output = sqlx::Result<i64>> + Send;

    /// The user with this e-mail.
    fn user_by_email(
        conn: &mut Self::Connection,
        email: &str,
    ) -> impl Future<Output = sqlx::Result<Option<UserRow>>> + Send;

    /// A user's profile.
    fn profile(
        conn: &mut Self::Connection,
        user_id: i64,
    ) -> impl Future<Output = sqlx::Result<Option<Profile>>> + Send;

    /// Replaces a user's name and addresses (run it in a transaction).
    fn save_profile(
        conn: &mut Self::Connection,
        user_id: i64,
        name: &str,
        addresses: &[String],
    ) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Records an order with its lines (run it in a transaction).
    fn create_order(
        conn: &mut Self::Connection,
        user_id: i64,
        ship_to: &str,
        lines: &[OrderLine],
    ) -> impl Future<Output = sqlx::Result<Order>> + Send;

    /// One of the user's orders.
    fn order(
        conn: &mut Self::Connection,
        user_id: i64,
        order_id: i64,
    ) -> impl Future<Output = sqlx::Result<Option<Order>>> + Send;

    /// The user's latest orders, newest first.
    fn orders(
        conn: &mut Self::Connection,
        user_id: i64,
    ) -> impl Future<Output = sqlx::Result<Vec<OrderSummary>>> + Send;
}

const PRODUCTS: &str =
    "SELECT sku, name, price_cents, description FROM products ORDER BY sku LIMIT $1 OFFSET $2";
const PRODUCT: &str = "SELECT sku, name, price_cents, description FROM products WHERE sku = $1";
const CREATE_USER: &str =
    "INSERT INTO users (email, password_hash, name) VALUES ($1, $2, $3) RETURNING id";
const USER_BY_EMAIL: &str = "SELECT id, email, name, password_hash FROM users WHERE email = $1";
const USER: &str = "SELECT email, name FROM users WHERE id = $1";
const ADDRESSES: &str = "SELECT line FROM addresses WHERE user_id = $1 ORDER BY pos";
const SET_NAME: &str = "UPDATE users SET name = $1 WHERE id = $2";
const CLEAR_ADDRESSES: &str = "DELETE FROM addresses WHERE user_id = $1";
const ADD_ADDRESS: &str = "INSERT INTO addresses (user_id, pos, line) VALUES ($1, $2, $3)";
const CREATE_ORDER: &str = "INSERT INTO orders (user_id, total_cents, ship_to, created_at_ms) \
     VALUES ($1, $2, $3, $4) RETURNING id";
const ADD_ORDER_LINE: &str = "INSERT INTO order_lines (order_id, pos, sku, name, qty, price_cents) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const ORDER: &str =
    "SELECT id, total_cents, ship_to, created_at_ms FROM orders WHERE id = $1 AND user_id = $2";
const ORDER_LINES: &str =
    "SELECT sku, name, qty, price_cents FROM order_lines WHERE order_id = $1 ORDER BY pos";
const ORDERS: &str = "SELECT id, total_cents, created_at_ms FROM orders WHERE user_id = $1 \
     ORDER BY id DESC LIMIT 20";

/// SQLite and PostgreSQL: the query as written.
fn numbered(sql: &'static str) -> SqlStr {
    SqlStr::from_static(sql)
}

/// MySQL/MariaDB: `$N` placeholders become `?`.
fn question_marks(sql: &'static str) -> SqlStr {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    AssertSqlSafe(out).into_sql_str()
}

fn migrator(schema: &'static str) -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "schema".into(),
            MigrationType::Simple,
            SqlStr::from_static(schema),
            false,
        ),
        Migration::new(
            2,
            "seed products".into(),
            MigrationType::Simple,
            AssertSqlSafe(seed_sql()).into_sql_str(),
            false,
        ),
    ])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

type ProductRow = (String, String, i64, String);

fn product((sku, name, price_cents, description): ProductRow) -> Product {
    Product {
        sku,
        name,
        price_cents,
        description,
    }
}

macro_rules! repo {
    ($db:ty, $dir:literal, $sql:path) => {
        impl Repo for $db {
            async fn migrate(pool: &Pool<$db>) -> Result<(), MigrateError> {
                migrator(include_str!(concat!(
                    "../../migrations/",
                    $dir,
                    "/0001_schema.sql"
                )))
                .run(pool)
                .await
            }

            async fn products(
                conn: &mut <$db as Database>::Connection,
                offset: i64,
                limit: i64,
            ) -> sqlx::Result<Vec<Product>> {
                let rows = sqlx::query_as::<$db, ProductRow>($sql(PRODUCTS))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(rows.into_iter().map(product).collect())
            }

            async fn product(
                conn: &mut <$db as Database>::Connection,
                sku: &str,
            ) -> sqlx::Result<Option<Product>> {
                let row = sqlx::query_as::<$db, ProductRow>($sql(PRODUCT))
                    .bind(sku)
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(row.map(product))
            }

            async fn create_user(
                conn: &mut <$db as Database>::Connection,
                email: &str,
                password_hash: &str,
                name: &str,
            ) -> sqlx::Result<i64> {
                sqlx::query_scalar::<$db, i64>($sql(CREATE_USER))
                    .bind(email)
                    .bind(password_hash)
                    .bind(name)
                    .fetch_one(&mut *conn)
                    .await
            }

            async fn user_by_email(
                conn: &mut <$db as Database>::Connection,
                email: &str,
            ) -> sqlx::Result<Option<UserRow>> {
                let row = sqlx::query_as::<$db, (i64, String, String, String)>($sql(USER_BY_EMAIL))
                    .bind(email)
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(row.map(|(id, email, name, password_hash)| UserRow {
                    id,
                    email,
                    name,
                    password_hash,
                }))
            }

            async fn profile(
                conn: &mut <$db as Database>::Connection,
                user_id: i64,
            ) -> sqlx::Result<Option<Profile>> {
                let Some((email, name)) = sqlx::query_as::<$db, (String, String)>($sql(USER))
                    .bind(user_id)
                    .fetch_optional(&mut *conn)
                    .await?
                else {
                    return Ok(None);
                };
                let addresses = sqlx::query_scalar::<$db, String>($sql(ADDRESSES))
                    .bind(user_id)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(Some(Profile {
                    email,
                    name,
                    addresses,
                }))
            }

            async fn save_profile(
                conn: &mut <$db as Database>::Connection,
                user_id: i64,
                name: &str,
                addresses: &[String],
            ) -> sqlx::Result<()> {
                sqlx::query::<$db>($sql(SET_NAME))
                    .bind(name)
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query::<$db>($sql(CLEAR_ADDRESSES))
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                for (pos, line) in (0_i64..).zip(addresses) {
                    sqlx::query::<$db>($sql(ADD_ADDRESS))
                        .bind(user_id)
                        .bind(pos)
                        .bind(line.as_str())
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            }

            async fn create_order(
                conn: &mut <$db as Database>::Connection,
                user_id: i64,
                ship_to: &str,
                lines: &[OrderLine],
            ) -> sqlx::Result<Order> {
                let total_cents = lines.iter().map(|l| l.qty * l.price_cents).sum();
                let created_at_ms = now_ms();
                let id = sqlx::query_scalar::<$db, i64>($sql(CREATE_ORDER))
                    .bind(user_id)
                    .bind(total_cents)
                    .bind(ship_to)
                    .bind(created_at_ms)
                    .fetch_one(&mut *conn)
                    .await?;
                for (pos, line) in (0_i64..).zip(lines) {
                    sqlx::query::<$db>($sql(ADD_ORDER_LINE))
                        .bind(id)
                        .bind(pos)
                        .bind(line.sku.as_str())
                        .bind(line.name.as_str())
                        .bind(line.qty)
                        .bind(line.price_cents)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(Order {
                    id,
                    total_cents,
                    ship_to: ship_to.to_owned(),
                    created_at_ms,
                    lines: lines.to_vec(),
                })
            }

            async fn order(
                conn: &mut <$db as Database>::Connection,
                user_id: i64,
                order_id: i64,
            ) -> sqlx::Result<Option<Order>> {
                let Some((id, total_cents, ship_to, created_at_ms)) =
                    sqlx::query_as::<$db, (i64, i64, String, i64)>($sql(ORDER))
                        .bind(order_id)
                        .bind(user_id)
                        .fetch_optional(&mut *conn)
                        .await?
                else {
                    return Ok(None);
                };
                let lines = sqlx::query_as::<$db, (String, String, i64, i64)>($sql(ORDER_LINES))
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?
                    .into_iter()
                    .map(|(sku, name, qty, price_cents)| OrderLine {
                        sku,
                        name,
                        qty,
                        price_cents,
                    })
                    .collect();
                Ok(Some(Order {
                    id,
                    total_cents,
                    ship_to,
                    created_at_ms,
                    lines,
                }))
            }

            async fn orders(
                conn: &mut <$db as Database>::Connection,
                user_id: i64,
            ) -> sqlx::Result<Vec<OrderSummary>> {
                let rows = sqlx::query_as::<$db, (i64, i64, i64)>($sql(ORDERS))
                    .bind(user_id)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, total_cents, created_at_ms)| OrderSummary {
                        id,
                        total_cents,
                        created_at_ms,
                    })
                    .collect())
            }
        }
    };
}

repo!(Sqlite, "sqlite", numbered);
repo!(Postgres, "postgres", numbered);
repo!(MySql, "mysql", question_marks);

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// `sqlite:` URLs (and the default file).
    Sqlite,
    /// `postgres://` and `postgresql://` URLs.
    Postgres,
    /// `mysql://` URLs (MariaDB 10.5 or newer).
    MySql,
}

impl Backend {
    /// The backend of `url`, if its scheme is one of the shop's and the
    /// rest of it parses.
    ///
    /// # Errors
    ///
    /// What is wrong with the URL.
    pub fn of_url(url: &str) -> Result<Self, String> {
        let backend = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map(|_| Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url).map(|_| Backend::Postgres)
        } else if url.starts_with("mysql://") {
            MySqlConnectOptions::from_str(url).map(|_| Backend::MySql)
        } else {
            return Err("expected a sqlite:, postgres:// or mysql:// URL".to_owned());
        };
        backend.map_err(|e| e.to_string())
    }
}

/// The database router of the configured backend.
#[derive(Debug, Clone)]
pub(crate) enum Routers {
    Sqlite(DbRouter<Sqlite>),
    Postgres(DbRouter<Postgres>),
    MySql(DbRouter<MySql>),
}

fn bad_url(var: &'static str, e: impl std::fmt::Display) -> StartError {
    StartError::new(var, e.to_string())
}

/// Connects the primary (checking that it answers), runs the migrations,
/// and builds the router over the replicas (checking that they answer).
pub(crate) async fn connect(config: &Config) -> Result<Routers, StartError> {
    let url = config.database_url.as_deref();
    let replicas = &config.replica_urls;
    match url.map(Backend::of_url).transpose() {
        Err(e) => Err(bad_url("DATABASE_URL", e)),
        Ok(None | Some(Backend::Sqlite)) => {
            let primary = match url {
                Some(url) => {
                    SqliteConnectOptions::from_str(url).map_err(|e| bad_url("DATABASE_URL", e))?
                }
                None => SqliteConnectOptions::new().filename(config.data_dir.join("shop.db")),
            };
            let tune = |o: SqliteConnectOptions| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
            };
            let replicas = parse_all(replicas, SqliteConnectOptions::from_str)?;
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
            .map(Routers::Sqlite)
        }
        Ok(Some(Backend::Postgres)) => {
            let primary = PgConnectOptions::from_str(url.unwrap_or_default())
                .map_err(|e| bad_url("DATABASE_URL", e))?;
            let replicas = parse_all(replicas, PgConnectOptions::from_str)?;
            open(PoolOptions::new(), primary, replicas)
                .await
                .map(Routers::Postgres)
        }
        Ok(Some(Backend::MySql)) => {
            let primary = MySqlConnectOptions::from_str(url.unwrap_or_default())
                .map_err(|e| bad_url("DATABASE_URL", e))?;
            let replicas = parse_all(replicas, MySqlConnectOptions::from_str)?;
            open(PoolOptions::new(), primary, replicas)
                .await
                .map(Routers::MySql)
        }
    }
}

fn parse_all<O, E: std::fmt::Display>(
    urls: &[String],
    parse: impl Fn(&str) -> Result<O, E>,
) -> Result<Vec<O>, StartError> {
    urls.iter()
        .map(|u| parse(u).map_err(|e| bad_url("DATABASE_REPLICA_URLS", e)))
        .collect()
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

async fn open<DB: Repo>(
    pool: PoolOptions<DB>,
    primary: <DB::Connection as sqlx::Connection>::Options,
    replicas: Vec<<DB::Connection as sqlx::Connection>::Options>,
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

/// Whether the database refused a row because a unique value is taken.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_placeholders() {
        assert_eq!(
            question_marks("SELECT a FROM t WHERE b = $1 AND c = $12").as_str(),
            "SELECT a FROM t WHERE b = ? AND c = ?"
        );
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mongodb://h").is_err());
    }
}
