//! The [`Repo`] trait: the shop's queries, written once and implemented
//! for SQLite, PostgreSQL and MySQL/MariaDB by one macro.
//!
//! The queries use `$1`-style placeholders, which SQLite and PostgreSQL
//! take as they are; for MySQL/MariaDB they are rewritten to `?` (every
//! query uses each placeholder once, in order).

use std::future::Future;

use db_router::RoutedDatabase;
use sqlx::migrate::MigrateError;
use sqlx::mysql::MySql;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::{AssertSqlSafe, Database, Pool, SqlSafeStr, SqlStr};

use super::migrations::migrator;
use super::records::{Order, OrderLine, OrderSummary, Profile, UserRow};
use crate::catalog::Product;

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

    /// Sets a product's price; `false` if no product has this SKU.
    fn set_price(
        conn: &mut Self::Connection,
        sku: &str,
        price_cents: i64,
    ) -> impl Future<Output = sqlx::Result<bool>> + Send;

    /// How many products sort before `sku` (its index in the list).
    fn position(
        conn: &mut Self::Connection,
        sku: &str,
    ) -> impl Future<Output = sqlx::Result<i64>> + Send;

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
const SET_PRICE: &str = "UPDATE products SET price_cents = $1 WHERE sku = $2";
const POSITION: &str = "SELECT COUNT(*) FROM products WHERE sku < $1";
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

            async fn set_price(
                conn: &mut <$db as Database>::Connection,
                sku: &str,
                price_cents: i64,
            ) -> sqlx::Result<bool> {
                // Asked first: MySQL counts only rows whose value changed.
                if Self::product(&mut *conn, sku).await?.is_none() {
                    return Ok(false);
                }
                sqlx::query::<$db>($sql(SET_PRICE))
                    .bind(price_cents)
                    .bind(sku)
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            }

            async fn position(
                conn: &mut <$db as Database>::Connection,
                sku: &str,
            ) -> sqlx::Result<i64> {
                sqlx::query_scalar::<$db, i64>($sql(POSITION))
                    .bind(sku)
                    .fetch_one(&mut *conn)
                    .await
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
    }
}
