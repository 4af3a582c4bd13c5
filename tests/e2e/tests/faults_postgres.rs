//! PostgreSQL faults under the shop: two shop processes behind HAProxy on
//! a private primary and its streaming replica (sessions in the shared
//! Redis, no product cache, so every product read reaches the database).
//!
//! - A write whose connection is terminated mid-transaction (as when the
//!   primary shuts down under it): `503`, not `500`.
//! - Replica stopped: product pages keep answering `200`, from the
//!   primary, and are fast again within about one health interval.
//! - Primary stopped: the shop stays browsable from the replica, the cart
//!   (in the session, not the database) still works, and checkout and
//!   profile saves answer a clear `503` with `Retry-After`.
//! - Primary back: checkout and profile saves work again, with no shop
//!   restarted.

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Probe, Tally};
use serde_json::json;
use test_support::env::require_server;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::postgres::PgPair;
use test_support::{redis, say, unique, wait_until};

/// The shop's replica health interval (`examples/shop/src/db/connect.rs`), which
/// the monitor jitters up to 1.2 times.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

fn ok_or_panic(what: &str, p: &Probe) {
    assert_eq!(
        p.status,
        Some(200),
        "{what}: {} after {:?}: {}",
        p.label(),
        p.took,
        p.body
    );
}

async fn browse(client: &ShopClient, tally: &mut Tally, n: usize) -> Vec<Probe> {
    let paths = [
        "/".to_owned(),
        format!("/products/SKU-{:04}", 100 + n % 50),
        format!("/api/products/SKU-{:04}", 200 + n % 50),
    ];
    let mut out = Vec::new();
    for path in &paths {
        let p = faults::get(client, path).await;
        tally.count(&p);
        out.push(p);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_and_primary_outages_keep_the_shop_browsable_and_writes_clear() {
    let started = Instant::now();
    let redis_url = redis::shared_url();
    require_server("REDIS_URL", &redis_url).await;
    let pg = PgPair::start().await;
    say(&format!("postgres pair up in {:?}", started.elapsed()));
    let primary_url = pg.primary_url("stateful");
    let replica_url = pg.replica_url("stateful");
    let fleet = Fleet::start(
        2,
        &[
            ("SESSION_STORE", "redis"),
            ("REDIS_URL", redis_url.as_str()),
            // The single node: not the cluster the test environment may name.
            ("REDIS_CLUSTER_URLS", ""),
            ("CACHE", "none"),
            ("DATABASE_URL", primary_url.as_str()),
            ("DATABASE_REPLICA_URLS", replica_url.as_str()),
            ("COOKIE_SECURE", "false"),
        ],
        Balance::RoundRobin,
    )
    .await;

    let alice = ShopClient::new(fleet.url());
    alice
        .signup(&format!("{}@example.com", unique("pg")), "a long password")
        .await;
    alice.add("SKU-0001").await;
    alice
        .ok(
            "/api/profile",
            &json!({"name": "Alice", "addresses": ["1 Main Street"]}),
        )
        .await;
    let replica = pg.connect(pg.replica_port, "stateful").await;
    wait_until(
        "the profile on the replica",
        Duration::from_secs(15),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM addresses WHERE line = '1 Main Street'",
            )
            .fetch_one(&replica)
            .await
            .is_ok_and(|n| n == 1)
        },
    )
    .await;
    replica.close().await;

    // ---- a write cut off mid-transaction (its connection terminated, as
    // when the primary shuts down under it): a 503, not a 500.
    let admin = pg.connect(pg.primary_port, "stateful").await;
    let mut lock = admin.begin().await.expect("begin");
    sqlx::query("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock the orders");
    let writer = alice.clone();
    let checkout =
        tokio::spawn(async move { faults::post(&writer, "/api/checkout", &json!({})).await });
    let waiting = Instant::now();
    let blocked = loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO orders%'",
        )
        .fetch_optional(&admin)
        .await
        .expect("pg_stat_activity");
        if let Some(pid) = pid {
            break pid;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the checkout never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(blocked)
        .execute(&admin)
        .await
        .expect("terminate the checkout's connection");
    let cut = checkout.await.expect("the checkout");
    lock.rollback().await.expect("rollback");
    admin.close().await;
    assert_eq!(
        cut.status,
        Some(503),
        "a write whose connection was terminated: {} {}",
        cut.label(),
        cut.body
    );
    assert!(cut.retry_after, "a 503 without Retry-After");
    say(&format!(
        "write with its connection terminated: {} after {:?}",
        cut.label(),
        cut.took
    ));

    // ---- the replica stops: reads move to the primary.
    let browser = ShopClient::new(fleet.url());
    pg.stop_replica();
    let stopped = Instant::now();
    let mut tally = Tally::default();
    let mut n = 0;
    while stopped.elapsed() < Duration::from_secs(4) {
        for p in browse(&browser, &mut tally, n).await {
            ok_or_panic("replica down", &p);
            // After a health interval (jittered) and the probe's timeout
            // the replica is banned and reads go straight to the primary.
            if p.sent > stopped + HEALTH_INTERVAL * 2 + Duration::from_millis(500) {
                assert!(
                    p.took < Duration::from_secs(1),
                    "reads still slow {:?} after the replica stopped: {:?}",
                    p.sent - stopped,
                    p.took
                );
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say(&format!("replica down, reads: {}", tally.line()));

    pg.start_replica().await;
    pg.wait_streaming().await;
    // Re-admitted by the next probe.
    tokio::time::sleep(HEALTH_INTERVAL * 2).await;

    // ---- the primary stops: browse from the replica, cart in the session.
    pg.stop_primary();
    let stopped = Instant::now();
    // The writes fail slowly (pool acquire timeouts): try them meanwhile.
    let writer = alice.clone();
    let writes = tokio::spawn(async move {
        let empty = json!({});
        let profile = json!({"name": "Alice", "addresses": ["2 New Road"]});
        tokio::join!(
            faults::post(&writer, "/api/checkout", &empty),
            faults::post(&writer, "/api/profile", &profile)
        )
    });
    let mut tally = Tally::default();
    let mut carts = Tally::default();
    let mut n = 0;
    // Longer than the shop's 10 s replica lag limit.
    while stopped.elapsed() < Duration::from_secs(12) {
        for p in browse(&browser, &mut tally, n).await {
            ok_or_panic(
                &format!("primary down for {:?}, browsing", stopped.elapsed()),
                &p,
            );
        }
        let p = faults::get(&alice, "/api/cart").await;
        carts.count(&p);
        ok_or_panic("primary down, cart", &p);
        n += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let added = faults::add(&alice, "SKU-0002").await;
    ok_or_panic("primary down, add to cart", &added);
    assert_eq!(faults::skus(&added.body), ["SKU-0001", "SKU-0002"]);
    say(&format!(
        "primary down, browsing: {}; cart reads: {}; add: {:?}",
        tally.line(),
        carts.line(),
        added.took
    ));

    let (checkout, profile) = writes.await.expect("the writes");
    let mut writes = Tally::default();
    for (what, p) in [("checkout", &checkout), ("profile save", &profile)] {
        writes.count(p);
        assert_eq!(
            p.status,
            Some(503),
            "{what} with the primary down: {} {}",
            p.label(),
            p.body
        );
        assert!(p.retry_after, "{what}: a 503 without Retry-After");
        // The pool's 5 s acquire timeout, then at most the 1 s probe
        // timeout for the causal token (not a second acquire timeout).
        assert!(p.took < Duration::from_secs(9), "{what} took {:?}", p.took);
    }
    say(&format!("primary down, writes: {}", writes.line()));

    // ---- the primary returns: writes work again, no shop restarted.
    pg.start_primary().await;
    let back = Instant::now();
    let order = loop {
        let p = faults::post(&alice, "/api/checkout", &json!({})).await;
        if p.status == Some(200) {
            break p;
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "checkout does not work {:?} after the primary returned: {} {}",
            back.elapsed(),
            p.label(),
            p.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    say(&format!(
        "primary back: checkout 200 after {:?}",
        back.elapsed()
    ));
    assert_eq!(order.body["lines"].as_array().map(Vec::len), Some(2));
    let saved = faults::post(
        &alice,
        "/api/profile",
        &json!({"name": "Alice", "addresses": ["2 New Road"]}),
    )
    .await;
    ok_or_panic("profile save after the primary returned", &saved);
    assert_eq!(saved.body["addresses"][0], "2 New Road");
    pg.wait_streaming().await;
    say(&format!("postgres faults took {:?}", started.elapsed()));
}
