//! Routing against a real MariaDB (or MySQL) server, used as the primary,
//! and against a private MariaDB primary with a GTID replica
//! (test-support's `MariaDbPair`, which a test may delay with
//! `MASTER_DELAY` and kill).
//!
//! The shared server's URL comes from `MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/stateful`); start the server (and install
//! `mariadbd` for the private pair) with `eval "$(scripts/services.sh up)"`.
//! An unreachable server fails the tests: nothing here is skipped.

#![cfg(feature = "mysql")]

mod common;

use std::time::Duration;

use db_router::{DbHandle, DbRouter, FallbackReason, Position, Role, RouterLayer};
use http::Request;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{MySql, MySqlConnection, MySqlExecutor, Pool};
use test_support::START_HINT;
use test_support::mariadb::{MariaDbPair, url as mysql_url};
use test_support::unique as unique_tag;
use tower::{ServiceBuilder, ServiceExt};

use common::{ItemsTable, app_handler, assert_waited_once_and_served};

async fn primary() -> MySqlPool {
    connect(&mysql_url()).await
}

/// A pool on `url` holding the `db_router_items` table.
async fn connect(url: &str) -> MySqlPool {
    let url = url.to_owned();
    let connect = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url);
    let pool = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(pool)) => pool,
        Ok(Err(e)) => panic!("cannot connect to MariaDB/MySQL at {url}: {e}; {START_HINT}"),
        Err(_) => panic!("connecting to MariaDB/MySQL at {url} timed out; {START_HINT}"),
    };
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS db_router_items \
         (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(200) NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool
}

async fn insert<'e>(executor: impl MySqlExecutor<'e>, tag: &str) {
    sqlx::query("INSERT INTO db_router_items (tag) VALUES (?)")
        .bind(tag)
        .execute(executor)
        .await
        .unwrap();
}

async fn count(conn: &mut MySqlConnection, tag: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM db_router_items WHERE tag = ?")
        .bind(tag)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn assert_refuses_write(conn: &mut MySqlConnection) {
    let err = sqlx::query("INSERT INTO db_router_items (tag) VALUES ('must-fail')")
        .execute(&mut *conn)
        .await
        .expect_err("a reader must refuse writes");
    assert!(err.to_string().contains("READ ONLY"), "{err}");
}

#[tokio::test]
async fn readers_are_read_only_and_transactions_write_on_the_primary() {
    let router = DbRouter::builder(primary().await).build().await.unwrap();
    let tag = unique_tag("tx");

    let mut tx = router.begin().await.unwrap();
    insert(&mut *tx, &tag).await;
    assert_eq!(
        count(&mut tx, &tag).await,
        1,
        "reads in the transaction see its writes"
    );
    tx.commit().await.unwrap();

    let mut conn = router.reader().await.unwrap();
    assert_eq!(count(&mut conn, &tag).await, 1);
    assert_refuses_write(&mut conn).await;

    let handle = DbHandle::new(router.clone(), Role::Write, None);
    let mut conn = handle.reader().await.unwrap();
    assert_refuses_write(&mut conn).await;

    let stats = router.stats();
    assert_eq!(stats.writes, 1);
    assert_eq!(stats.primary_reads, 2);
}

#[tokio::test]
async fn replica_probe_guard_and_write_window() {
    // The server doubles as its own "replica": it is not replicating, so the
    // probe finds no replica status and treats it as a plain healthy server.
    let router = DbRouter::builder(primary().await)
        .with_replica_url(mysql_url())
        .with_write_window(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let replica = &router.stats().replicas[0];
    assert!(replica.healthy && replica.within_lag, "{replica:?}");

    let mut conn = router.reader().await.unwrap();
    assert_refuses_write(&mut conn).await;
    drop(conn);
    assert_eq!(router.stats().replica_reads, 1);

    let tag = unique_tag("window");
    insert(router.write_pool(), &tag).await;
    let token = router.write_token().await.unwrap();
    match token.position() {
        // Binary log off: no GTID, the write window applies.
        None => {
            let mut conn = router.reader_with(Some(&token)).await.unwrap();
            assert_eq!(count(&mut conn, &tag).await, 1);
            assert_eq!(router.stats().fallbacks.get(FallbackReason::RecentWrite), 1);
            tokio::time::sleep(Duration::from_millis(350)).await;
            let _conn = router.reader_with(Some(&token)).await.unwrap();
            assert_eq!(
                router.stats().replica_reads,
                2,
                "after the window replicas serve"
            );
        }
        Some(Position::Gtid(gtid)) => {
            // Binary log on: the "replica" reports no slave position, so a
            // token read goes to the primary.
            assert!(!gtid.entries().is_empty());
            let mut conn = router.reader_with(Some(&token)).await.unwrap();
            assert_eq!(count(&mut conn, &tag).await, 1);
        }
        Some(other) => panic!("unexpected position {other:?}"),
    }
}

/// `GET /?tag` answers the count.
impl ItemsTable for MySql {
    async fn insert(pool: &Pool<MySql>, tag: &str) {
        insert(pool, tag).await;
    }

    async fn answer(conn: &mut PoolConnection<MySql>, tag: &str) -> String {
        count(conn, tag).await.to_string()
    }
}

#[tokio::test]
async fn tower_layer_reads_on_get_and_writes_on_post() {
    let router = DbRouter::builder(primary().await).build().await.unwrap();
    let app = ServiceBuilder::new()
        .layer(RouterLayer::new(router.clone()))
        .service_fn(app_handler::<MySql>);
    let tag = unique_tag("layer");

    let post = Request::post("/").body(tag.clone()).unwrap();
    let response = app.clone().oneshot(post).await.unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("db_causal=v1."), "{cookie}");

    let get = Request::get(format!("/?{tag}"))
        .header("cookie", cookie.split(';').next().unwrap())
        .body(String::new())
        .unwrap();
    let response = app.oneshot(get).await.unwrap();
    assert_eq!(response.body(), "1");
    let stats = router.stats();
    assert_eq!(
        (stats.writes, stats.primary_reads, stats.tokens_issued),
        (1, 1, 1)
    );
}

// ---- a private primary and GTID replica ------------------------------------

/// A private pair with the table on both servers, the replica caught up.
async fn pair() -> (MariaDbPair, MySqlPool) {
    let pair = MariaDbPair::start().await;
    let pool = connect(&pair.primary.url()).await;
    pair.wait_caught_up(Duration::from_secs(10)).await;
    (pair, pool)
}

/// A router on the pair, probing often. No lag limit unless a test sets
/// one.
fn routed(pair: &MariaDbPair, primary: &MySqlPool) -> db_router::RouterBuilder<MySql> {
    DbRouter::builder(primary.clone())
        .with_max_lag(None)
        .with_replica_url(pair.replica.url())
        .with_health_interval(Duration::from_millis(200))
        .with_probe_timeout(Duration::from_secs(3))
        .with_replica_acquire_timeout(Duration::from_secs(3))
}

/// Whether `conn` reaches the replica (server ID 2 in a `MariaDbPair`).
async fn on_replica(conn: &mut MySqlConnection) -> bool {
    let id: u32 = sqlx::query_scalar("SELECT @@server_id")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    id == 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtid_tokens_skip_or_wait_for_a_delayed_replica() {
    let (pair, primary) = pair().await;
    let router = routed(&pair, &primary).build().await.unwrap();
    let waiting = routed(&pair, &primary)
        .with_token_wait(Duration::from_secs(10), Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    drop(conn);
    pair.set_delay(2).await;

    // Skip: the token's read goes to the primary, which has the write,
    // while a plain read (and the replica itself) does not see it yet.
    let tag = unique_tag("gtid");
    insert(router.write_pool(), &tag).await;
    let token = router.write_token().await.unwrap();
    let Some(Position::Gtid(gtid)) = token.position() else {
        panic!("a MariaDB primary with a binary log gives GTID tokens: {token}");
    };
    assert_eq!(gtid.to_string(), pair.primary_gtid().await);
    let mut conn = router.reader_with(Some(&token)).await.unwrap();
    assert!(!on_replica(&mut conn).await, "the delayed replica was used");
    assert_eq!(
        count(&mut conn, &tag).await,
        1,
        "the token's read misses the write"
    );
    drop(conn);
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    assert_eq!(
        count(&mut conn, &tag).await,
        0,
        "the replica was not behind: the test would prove nothing"
    );
    drop(conn);
    assert_eq!(
        router
            .stats()
            .fallbacks
            .get(FallbackReason::TokenNotReached),
        1,
        "{:?}",
        router.stats()
    );

    // Wait: the replica applies the write within the wait, then serves.
    let tag = unique_tag("gtid-wait");
    insert(waiting.write_pool(), &tag).await;
    let token = waiting.write_token().await.unwrap();
    let mut conn = waiting.reader_with(Some(&token)).await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", waiting.stats());
    assert_eq!(
        count(&mut conn, &tag).await,
        1,
        "the replica had not applied the write"
    );
    assert_waited_once_and_served(&waiting.stats());
    pair.set_delay(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_the_lag_limit_is_skipped_until_it_catches_up() {
    let (pair, primary) = pair().await;
    let router = routed(&pair, &primary)
        .with_max_lag(Some(Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    pair.set_delay(4).await;
    insert(router.write_pool(), &unique_tag("lag")).await;
    // The replica holds the write back for 4 s: its Seconds_Behind_Master
    // grows past the 1 s limit.
    let r = &router;
    test_support::wait_until(
        "the replica to lag past 1 s",
        Duration::from_secs(10),
        || async move {
            r.check_health().await;
            let replica = &r.stats().replicas[0];
            !replica.within_lag && replica.lag.is_some()
        },
    )
    .await;
    let replica = &router.stats().replicas[0];
    assert!(replica.healthy, "{replica:?}");
    assert!(
        replica.lag.is_some_and(|l| l > Duration::from_secs(1)),
        "{replica:?}"
    );
    let mut conn = router.reader().await.unwrap();
    assert!(!on_replica(&mut conn).await, "a lagging replica was used");
    drop(conn);
    assert!(
        router
            .stats()
            .fallbacks
            .get(FallbackReason::ReplicasLagging)
            >= 1,
        "{:?}",
        router.stats()
    );

    // Once the write is applied the replica is back within the limit.
    pair.wait_caught_up(Duration::from_secs(15)).await;
    test_support::wait_until(
        "the replica back within the limit",
        Duration::from_secs(10),
        || async move {
            r.check_health().await;
            r.stats().replicas[0].within_lag
        },
    )
    .await;
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    pair.set_delay(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_sends_reads_to_the_primary_until_it_returns() {
    let (mut pair, primary) = pair().await;
    let router = routed(&pair, &primary)
        .with_probe_timeout(Duration::from_millis(500))
        .with_replica_acquire_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let tag = unique_tag("kill");
    insert(router.write_pool(), &tag).await;
    pair.wait_caught_up(Duration::from_secs(10)).await;
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    drop(conn);

    pair.replica.kill();
    for _ in 0..5 {
        let mut conn = router.reader().await.expect("reads keep working");
        assert!(!on_replica(&mut conn).await, "reads come from the primary");
        assert_eq!(count(&mut conn, &tag).await, 1);
    }
    let stats = router.stats();
    assert!(!stats.replicas[0].healthy, "{stats:?}");
    assert_eq!(stats.replicas[0].bans, 1, "{stats:?}");
    assert_eq!(stats.primary_reads, 5, "{stats:?}");

    // Back: it resumes replicating, the monitor re-admits it, reads return
    // to it and see what was written while it was down.
    let tag = unique_tag("while-down");
    insert(router.write_pool(), &tag).await;
    pair.replica.restart().await;
    pair.wait_caught_up(Duration::from_secs(15)).await;
    let r = &router;
    test_support::wait_until(
        "reads back on the replica",
        Duration::from_secs(15),
        || async move {
            let Ok(mut conn) = r.reader().await else {
                return false;
            };
            on_replica(&mut conn).await
        },
    )
    .await;
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    assert_eq!(count(&mut conn, &tag).await, 1);
    assert_eq!(router.stats().replicas[0].bans, 1);
}
