//! Read-your-writes across instances with a lagging replica: three shop
//! processes behind HAProxy on a PostgreSQL primary and its streaming
//! replica, the replica held 500 ms behind (`recovery_min_apply_delay`).
//!
//! A user saves a new address; the very next page shows it, because the
//! causal token of the save travels in the session (db-router's
//! `SessionCarrier`) and the read that carries it goes to the primary or
//! a replica that has caught up. In the same moment the test shows that a
//! read without the token — straight from the replica, and through the
//! shop by a second log-in of the same user — still sees the old address,
//! so the check would fail if the token did not do its job.
//!
//! The servers come from `scripts/services.sh` (`PG_PRIMARY_URL`,
//! `PG_REPLICA_URL`). Each run uses a database of its own, dropped at the
//! end. The apply delay is reset to 0 when the test ends, also on failure.

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use serde_json::json;
use sqlx::postgres::PgPool;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::postgres::{self, set_apply_delay};
use test_support::urls::with_database;
use test_support::{say, unique};

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

async fn wait_on_replica(replica: &PgPool, sql: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(replica)
            .await
            .unwrap_or(false);
        if found {
            return;
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_address_shows_on_the_next_page_despite_a_lagging_replica() {
    let primary_url = postgres::primary_url();
    let replica_url = postgres::replica_url();
    let admin = connect("PG_PRIMARY_URL", &primary_url).await;
    let replica_admin = connect("PG_REPLICA_URL", &replica_url).await;
    postgres::require_standby(&replica_admin, &format!("PG_REPLICA_URL={replica_url}")).await;
    set_apply_delay(&replica_admin, "0").await;

    let name = unique("shop_e2e");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let _database = TestDatabase {
        admin_url: primary_url.clone(),
        name: name.clone(),
    };
    wait_on_replica(
        &replica_admin,
        &format!("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')"),
        "the test database",
    )
    .await;
    let db_primary = with_database(&primary_url, &name);
    let db_replica = with_database(&replica_url, &name);
    let keys = session_stores::cookie::Key::generate().to_base64();
    let fleet = Fleet::start(
        3,
        &[
            ("SESSION_STORE", "cookie"),
            ("COOKIE_KEYS", keys.as_str()),
            ("COOKIE_SECURE", "false"),
            ("DATABASE_URL", db_primary.as_str()),
            ("DATABASE_REPLICA_URLS", db_replica.as_str()),
        ],
        Balance::RoundRobin,
    )
    .await;
    let replica = connect("PG_REPLICA_URL", &db_replica).await;

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
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&connect("PG_PRIMARY_URL", &db_primary).await)
        .await
        .unwrap();
    let old_on_replica = format!(
        "SELECT EXISTS (SELECT 1 FROM addresses WHERE user_id = {user_id} AND line = '1 Old Road')"
    );
    wait_on_replica(&replica, &old_on_replica, "the first address").await;
    for _ in 0..3 {
        assert_eq!(address(&other.get_json("/api/profile").await), "1 Old Road");
    }

    let delay = {
        set_apply_delay(&replica_admin, "500ms").await;
        ApplyDelay {
            replica_url: replica_url.clone(),
        }
    };
    let saved_at = Instant::now();
    alice
        .ok(
            "/api/profile",
            &json!({"name": "Alice", "addresses": ["2 New Street"]}),
        )
        .await;

    // Without the token: the replica is still behind ...
    let on_replica: String =
        sqlx::query_scalar("SELECT line FROM addresses WHERE user_id = $1 ORDER BY pos LIMIT 1")
            .bind(user_id)
            .fetch_one(&replica)
            .await
            .unwrap();
    // ... and so is what the shop shows a session without the token.
    let other_sees = address(&other.get_json("/api/profile").await);
    let stale_window = saved_at.elapsed();
    // With the token: the next page shows the new address, on whatever
    // instance it lands.
    let page = alice
        .http
        .get(alice.url("/profile"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let api = address(&alice.get_json("/api/profile").await);
    let fresh_window = saved_at.elapsed();
    say(&format!(
        "replica without token: {on_replica:?}, other session: {other_sees:?} \
         ({stale_window:?} after the save); with the token: {api:?} ({fresh_window:?})"
    ));
    assert!(
        stale_window < Duration::from_millis(450),
        "the stale reads took {stale_window:?}: too slow to show the 500 ms lag"
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
    drop(delay);
    drop(fleet);
}
