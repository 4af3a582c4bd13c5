//! Read-your-writes across instances with a lagging replica: three shop
//! processes behind HAProxy on a primary and a replica held behind, on
//! each database with replicas the shop supports:
//!
//! - PostgreSQL: the shared primary and its streaming replica (from
//!   `scripts/services.sh`: `PG_PRIMARY_URL`, `PG_REPLICA_URL`), the
//!   replica held 500 ms behind (`recovery_min_apply_delay`), a database
//!   of the test's own, dropped at the end;
//! - MariaDB: a private primary and GTID replica (test-support's
//!   `MariaDbPair`), the replica held 2 s behind (`MASTER_DELAY`, whole
//!   seconds counted from the primary's commit second, so 1 to 2 s).
//!
//! A user saves a new address; the very next page shows it, because the
//! causal token of the save (an LSN, a GTID position) travels in the
//! session (db-router's `SessionCarrier`) and the read that carries it
//! goes to the primary or a replica that has caught up. In the same moment
//! the test shows that a read without the token — straight from the
//! replica, and through the shop by a second log-in of the same user —
//! still sees the old address, so the check would fail if the token did
//! not do its job. The apply delay is reset to 0 when the test ends, also
//! on failure.

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use serde_json::json;
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::PgPool;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::mariadb::MariaDbPair;
use test_support::postgres::{self, set_apply_delay};
use test_support::urls::with_database;
use test_support::{START_HINT, say, unique};

async fn connect(var: &str, url: &str) -> PgPool {
    postgres::connect_shared(var, url, 2).await
}

/// Holds the 500 ms apply delay; resets it to 0 when dropped, also when
/// the test panics.
struct ApplyDelay {
    replica_url: String,
}

impl Drop for ApplyDelay {
    fn drop(&mut self) {
        let url = self.replica_url.clone();
        // Drop cannot await: reset from a thread with its own runtime.
        let reset = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let replica = connect("PG_REPLICA_URL", &url).await;
                    set_apply_delay(&replica, "0").await;
                });
        });
        if reset.join().is_err() && !std::thread::panicking() {
            panic!("could not reset the replica's recovery_min_apply_delay");
        }
    }
}

/// A database of the test's own on the primary; dropped with the guard.
struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let admin = connect("PG_PRIMARY_URL", &url).await;
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                });
        })
        .join();
    }
}

/// A pool on one server of either database, for the few queries the
/// scenario makes itself.
enum Pool {
    Pg(PgPool),
    My(MySqlPool),
}

impl Pool {
    /// A number the query `sql` answers (a `COUNT(*)`, an ID).
    async fn number(&self, sql: &str) -> Option<i64> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Pool::Pg(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.ok(),
            Pool::My(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.ok(),
        }
    }

    /// The text the query `sql` answers.
    async fn text(&self, sql: &str) -> String {
        let query = AssertSqlSafe(sql.to_owned());
        let text = match self {
            Pool::Pg(pool) => sqlx::query_scalar(query).fetch_one(pool).await,
            Pool::My(pool) => sqlx::query_scalar(query).fetch_one(pool).await,
        };
        text.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

async fn mysql_pool(url: &str) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}; {START_HINT}"))
}

/// A primary and its replica, ready for the shop, with the replica's
/// apply delay under the test's control.
struct Lagging {
    /// The shop's `DATABASE_URL` and `DATABASE_REPLICA_URLS`.
    primary_url: String,
    replica_url: String,
    primary: Pool,
    replica: Pool,
    /// How far the replica is held behind once [`hold_back`](Self::hold_back) ran.
    lag: Duration,
    delay: Delay,
}

/// How the replica is held back, and the servers' guards.
enum Delay {
    Pg {
        admin: PgPool,
        _database: TestDatabase,
        reset: Option<ApplyDelay>,
    },
    MariaDb(MariaDbPair),
}

impl Lagging {
    /// The shared PostgreSQL pair, with a database of the test's own.
    async fn postgres() -> Lagging {
        let primary_url = postgres::primary_url();
        let replica_url = postgres::replica_url();
        let admin = connect("PG_PRIMARY_URL", &primary_url).await;
        let replica_admin = connect("PG_REPLICA_URL", &replica_url).await;
        postgres::require_standby(&replica_admin, &format!("PG_REPLICA_URL={replica_url}")).await;
        set_apply_delay(&replica_admin, "0").await;
        let name = unique("shop_e2e");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let database = TestDatabase {
            admin_url: primary_url.clone(),
            name: name.clone(),
        };
        let replica_admin = Pool::Pg(replica_admin);
        wait_on_replica(
            &replica_admin,
            &format!("SELECT COUNT(*) FROM pg_database WHERE datname = '{name}'"),
            "the test database",
        )
        .await;
        let Pool::Pg(replica_admin) = replica_admin else {
            unreachable!("a PostgreSQL pool")
        };
        let db_primary = with_database(&primary_url, &name);
        let db_replica = with_database(&replica_url, &name);
        Lagging {
            primary: Pool::Pg(connect("PG_PRIMARY_URL", &db_primary).await),
            replica: Pool::Pg(connect("PG_REPLICA_URL", &db_replica).await),
            primary_url: db_primary,
            replica_url: db_replica,
            lag: Duration::from_millis(500),
            delay: Delay::Pg {
                admin: replica_admin,
                _database: database,
                reset: None,
            },
        }
    }

    /// A private MariaDB primary and GTID replica.
    async fn mariadb() -> Lagging {
        let pair = MariaDbPair::start().await;
        let (primary_url, replica_url) = (pair.primary.url(), pair.replica.url());
        Lagging {
            primary: Pool::My(mysql_pool(&primary_url).await),
            replica: Pool::My(mysql_pool(&replica_url).await),
            primary_url,
            replica_url,
            // MASTER_DELAY=2 counts from the primary's commit second.
            lag: Duration::from_secs(1),
            delay: Delay::MariaDb(pair),
        }
    }

    /// Holds the replica behind from now on.
    async fn hold_back(&mut self) {
        match &mut self.delay {
            Delay::Pg { admin, reset, .. } => {
                set_apply_delay(admin, "500ms").await;
                *reset = Some(ApplyDelay {
                    replica_url: postgres::replica_url(),
                });
            }
            Delay::MariaDb(pair) => pair.set_delay(2).await,
        }
    }
}

async fn wait_on_replica(replica: &Pool, sql: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while replica.number(sql).await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the replica never showed {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn address(profile: &serde_json::Value) -> String {
    profile["addresses"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The scenario, on the servers of `db`.
async fn saved_address_shows_on_the_next_page(mut db: Lagging) {
    let keys = session_stores::cookie::Key::generate().to_base64();
    let fleet = Fleet::start(
        3,
        &[
            ("SESSION_STORE", "cookie"),
            ("COOKIE_KEYS", keys.as_str()),
            ("COOKIE_SECURE", "false"),
            ("DATABASE_URL", db.primary_url.as_str()),
            ("DATABASE_REPLICA_URLS", db.replica_url.as_str()),
        ],
        Balance::RoundRobin,
    )
    .await;

    let email = format!("{}@example.com", unique("ryw"));
    let alice = ShopClient::new(fleet.url());
    alice.signup(&email, "a long password").await;
    let first = alice
        .ok(
            "/api/profile",
            &json!({"name": "Alice", "addresses": ["1 Old Road"]}),
        )
        .await;
    assert_eq!(address(&first), "1 Old Road");
    // The same user in another browser: its session carries no token.
    let other = ShopClient::new(fleet.url());
    other.login(&email, "a long password").await;
    let user_id = db
        .primary
        .number(&format!("SELECT id FROM users WHERE email = '{email}'"))
        .await
        .expect("the user's ID");
    let old_on_replica =
        format!("SELECT COUNT(*) FROM addresses WHERE user_id = {user_id} AND line = '1 Old Road'");
    wait_on_replica(&db.replica, &old_on_replica, "the first address").await;
    for _ in 0..3 {
        assert_eq!(address(&other.get_json("/api/profile").await), "1 Old Road");
    }

    db.hold_back().await;
    let saved_at = Instant::now();
    alice
        .ok(
            "/api/profile",
            &json!({"name": "Alice", "addresses": ["2 New Street"]}),
        )
        .await;

    // Without the token: the replica is still behind ...
    let on_replica = db
        .replica
        .text(&format!(
            "SELECT line FROM addresses WHERE user_id = {user_id} ORDER BY pos LIMIT 1"
        ))
        .await;
    // ... and so is what the shop shows a session without the token.
    let other_sees = address(&other.get_json("/api/profile").await);
    let stale_window = saved_at.elapsed();
    // With the token: the next page shows the new address, on whatever
    // instance it lands.
    let page = alice.page("/profile").await;
    let api = address(&alice.get_json("/api/profile").await);
    let fresh_window = saved_at.elapsed();
    say(&format!(
        "replica without token: {on_replica:?}, other session: {other_sees:?} \
         ({stale_window:?} after the save); with the token: {api:?} ({fresh_window:?})"
    ));
    assert!(
        stale_window < db.lag.mul_f64(0.9),
        "the stale reads took {stale_window:?}: too slow to show the {:?} lag",
        db.lag
    );
    assert_eq!(
        on_replica, "1 Old Road",
        "the replica was not behind: the test would prove nothing"
    );
    assert_eq!(
        other_sees, "1 Old Road",
        "a read without the token should come from the (stale) replica"
    );
    assert!(
        page.contains("2 New Street") && !page.contains("1 Old Road"),
        "the profile page after saving shows stale data: {page}"
    );
    assert_eq!(api, "2 New Street");

    // Once the replica caught up, everyone sees the new address.
    let deadline = Instant::now() + Duration::from_secs(10);
    while address(&other.get_json("/api/profile").await) != "2 New Street" {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_address_shows_on_the_next_page_despite_a_lagging_postgres_replica() {
    saved_address_shows_on_the_next_page(Lagging::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_address_shows_on_the_next_page_despite_a_lagging_mariadb_replica() {
    saved_address_shows_on_the_next_page(Lagging::mariadb().await).await;
}
