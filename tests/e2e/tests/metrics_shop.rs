//! Metrics that must move: a shop process with its admin listener is driven
//! through a scenario, and its `/metrics` is scraped before and after each
//! step to check the exact counter changes (the tests fail if a metric
//! stops moving, or moves by the wrong amount).
//!
//! - `sessions_caches_and_a_redis_outage`: sessions in a private Redis, the
//!   local product cache. A cache miss then a hit; concurrent adds to one
//!   cart (conflicts, re-applied updates, no exhausted retries); sign-up,
//!   log-out and log-in (sessions cycled and destroyed); Redis paused (a
//!   store timeout and a `503`); Redis killed, the next cart read a `503`.
//!   Every name scraped is documented.
//! - `a_replica_banned_then_readmitted`: a private PostgreSQL primary and
//!   replica; the replica is stopped (banned, reads fall back to the
//!   primary) and started again (re-admitted, reads go back to it).

use std::time::Duration;

use e2e::client::ShopClient;
use e2e::metrics::{Scrape, documented_names};
use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::postgres::PgPair;
use test_support::redis::{RedisConfig, RedisServer};
use test_support::shop::Shop;
use test_support::{TempDir, free_port, say, wait_until};

const PRODUCTS: &str = "shop:products:v1";

/// The shop on `env`, with an admin listener; its client and its admin
/// base URL.
async fn shop(env: &[(&str, &str)]) -> (Shop, ShopClient, String) {
    let admin = format!("127.0.0.1:{}", free_port());
    let mut env = env.to_vec();
    env.push(("ADMIN_ADDR", admin.as_str()));
    env.push(("COOKIE_SECURE", "false"));
    let shop = Shop::start(&env).await;
    let client = ShopClient::new(format!("http://{}", shop.addr));
    (shop, client, format!("http://{admin}"))
}

/// Reads three products from SKU number `first` on, then scrapes.
async fn read_three(client: &ShopClient, metrics: &str, first: usize) -> Scrape {
    for n in first..first + 3 {
        client.get_json(&format!("/api/products/SKU-{n:04}")).await;
    }
    Scrape::fetch(metrics).await
}

/// The status of a cart read with `client`'s cookie.
async fn cart_status(client: &ShopClient) -> reqwest::StatusCode {
    client
        .http
        .get(client.url("/api/cart"))
        .send()
        .await
        .expect("GET /api/cart")
        .status()
}

async fn status(admin: &str) -> Value {
    reqwest::get(format!("{admin}/status"))
        .await
        .expect("GET /status")
        .json()
        .await
        .expect("/status is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_caches_and_a_redis_outage() {
    let mut redis = RedisServer::start(RedisConfig::new()).await;
    let url = redis.url();
    let data = TempDir::new("stateful-metrics");
    let data_dir = data.path().to_string_lossy().into_owned();
    let (shop, client, admin) = shop(&[
        ("SHOP_DATA_DIR", data_dir.as_str()),
        ("SESSION_STORE", "redis"),
        ("REDIS_URL", url.as_str()),
        // The single node: not the cluster the test environment may name.
        ("REDIS_CLUSTER_URLS", ""),
        ("CACHE", "local"),
        ("SESSION_STORE_TIMEOUT_MS", "500"),
    ])
    .await;
    let metrics = format!("{admin}/metrics");

    // The public port has no admin pages.
    let res = reqwest::get(client.url("/metrics")).await.expect("GET");
    assert_eq!(res.status(), 404, "/metrics must not be on the public port");

    // A cache miss, then a hit.
    let before = Scrape::fetch(&metrics).await;
    for _ in 0..2 {
        let product = client.get_json("/api/products/SKU-0123").await;
        assert_eq!(product["sku"], "SKU-0123");
    }
    let after = Scrape::fetch(&metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| after.delta(&before, name, labels);
    let products = ("cache", PRODUCTS);
    assert_eq!(
        moved("cache_misses_total", &[products, ("tier", "l1")]),
        1.0
    );
    assert_eq!(moved("cache_loads_total", &[products]), 1.0);
    assert_eq!(moved("cache_hits_total", &[products, ("tier", "l1")]), 1.0);
    assert_eq!(moved("cache_load_errors_total", &[products]), 0.0);
    assert_eq!(
        moved(
            "cache_load_duration_seconds_count",
            &[products, ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(moved("db_router_reads_total", &[("role", "primary")]), 1.0);
    assert_eq!(
        moved(
            "http_server_requests_total",
            &[("route", "/api/products/{sku}"), ("status", "200")]
        ),
        2.0
    );
    // Requests without a session cookie cost no store call.
    assert_eq!(moved("session_store_calls_total", &[]), 0.0);
    say("metrics: cache miss then hit counted exactly");

    // Concurrent adds to one cart: conflicts, each re-applied once more.
    client.add("SKU-0001").await;
    const ADDS: usize = 12;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let before = Scrape::fetch(&metrics).await;
        let adds: Vec<_> = (0..ADDS)
            .map(|i| {
                let client = client.clone();
                let sku = format!("SKU-{:04}", 10 + rounds * ADDS + i);
                tokio::spawn(async move {
                    client
                        .post_json("/api/cart/items", &json!({ "sku": sku }))
                        .await
                        .0
                })
            })
            .collect();
        for add in adds {
            assert_eq!(add.await.expect("add task"), 200);
        }
        let after = Scrape::fetch(&metrics).await;
        let moved = |name: &str, labels: &[(&str, &str)]| after.delta(&before, name, labels);
        let conflicts = moved("session_conflicts_total", &[]);
        if conflicts == 0.0 && rounds < 10 {
            continue;
        }
        assert!(conflicts > 0.0, "{ADDS} concurrent adds never conflicted");
        assert_eq!(moved("session_update_reapplies_total", &[]), conflicts);
        assert_eq!(moved("session_retries_exhausted_total", &[]), 0.0);
        // One save per add, plus one per lost race; one load per add, plus
        // the reload after each lost race.
        let calls = |op: &str| moved("session_store_calls_total", &[("operation", op)]);
        let ok = |op: &str| {
            moved(
                "session_store_calls_total",
                &[("operation", op), ("outcome", "ok")],
            )
        };
        assert_eq!(calls("save"), ADDS as f64 + conflicts);
        assert_eq!(ok("save"), calls("save"));
        assert_eq!(calls("load"), ADDS as f64 + conflicts);
        assert_eq!(calls("create"), 0.0);
        assert_eq!(
            moved(
                "session_store_call_duration_seconds_count",
                &[("operation", "save")]
            ),
            calls("save")
        );
        assert_eq!(
            moved(
                "http_server_requests_total",
                &[("route", "/api/cart/items"), ("status", "200")]
            ),
            ADDS as f64
        );
        say(&format!(
            "metrics: {ADDS} concurrent adds, {conflicts} conflicts (round {rounds})"
        ));
        break;
    }
    assert_eq!(client.skus().await.len(), 1 + rounds * ADDS);

    // Sign-up and log-in give a stored session a new ID; log-out destroys
    // it. (A log-in without a stored session has no ID to replace: the
    // cart add before it stores one.)
    let before = Scrape::fetch(&metrics).await;
    let password = "correct horse battery staple";
    client.signup("metrics@example.com", password).await;
    client.ok("/api/logout", &json!({})).await;
    client.add("SKU-0002").await;
    client.login("metrics@example.com", password).await;
    let after = Scrape::fetch(&metrics).await;
    assert_eq!(after.delta(&before, "session_cycled_total", &[]), 2.0);
    assert_eq!(after.delta(&before, "session_destroyed_total", &[]), 1.0);
    say("metrics: two new session IDs and one destroyed session counted");

    // Redis paused: the next cart read times out after the store timeout
    // and answers 503.
    let before = Scrape::fetch(&metrics).await;
    redis.pause();
    let cart = cart_status(&client).await;
    redis.resume();
    assert_eq!(cart, 503);
    let after = Scrape::fetch(&metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| after.delta(&before, name, labels);
    assert_eq!(
        moved("session_store_timeouts_total", &[("operation", "load")]),
        1.0
    );
    assert_eq!(moved("session_store_timeouts_total", &[]), 1.0);
    assert_eq!(
        moved(
            "session_store_calls_total",
            &[("operation", "load"), ("outcome", "timeout")]
        ),
        1.0
    );
    assert_eq!(moved("session_unavailable_responses_total", &[]), 1.0);
    say("metrics: a paused Redis gave one store timeout and one 503");

    // Redis down: the next cart read answers 503, counted once.
    let st = status(&admin).await;
    assert_eq!(
        st["session_store"],
        json!({ "kind": "redis", "health": "ok" })
    );
    redis.kill();
    let before = Scrape::fetch(&metrics).await;
    assert_eq!(cart_status(&client).await, 503);
    let after = Scrape::fetch(&metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| after.delta(&before, name, labels);
    assert_eq!(moved("session_unavailable_responses_total", &[]), 1.0);
    assert_eq!(
        moved(
            "http_server_requests_total",
            &[("route", "/api/cart"), ("status", "503")]
        ),
        1.0
    );
    // One failed load; later calls in the request fail without asking.
    assert_eq!(
        moved("session_store_calls_total", &[("operation", "load")]),
        1.0
    );
    assert_eq!(
        moved(
            "session_store_calls_total",
            &[("operation", "load"), ("outcome", "ok")]
        ),
        0.0
    );
    let st = status(&admin).await;
    let health = st["session_store"]["health"].as_str().unwrap_or_default();
    assert!(health.starts_with("down"), "/status: {st}");
    say("metrics: Redis down gave one 503, counted once");

    // Everything exported is documented.
    let undocumented: Vec<_> = after
        .names()
        .difference(&documented_names())
        .cloned()
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in docs/observability.md: {undocumented:?}"
    );
    drop(shop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_banned_then_readmitted() {
    let pg = PgPair::start().await;
    let primary = pg.primary_url("stateful");
    let replica = pg.replica_url("stateful");
    let (shop, client, admin) = shop(&[
        ("SESSION_STORE", "memory"),
        // Every product read reaches the database.
        ("CACHE", "none"),
        ("DATABASE_URL", primary.as_str()),
        ("DATABASE_REPLICA_URLS", replica.as_str()),
    ])
    .await;
    let metrics = format!("{admin}/metrics");
    let st = status(&admin).await;
    let name = st["database"][1]["name"]
        .as_str()
        .expect("the replica in /status")
        .to_owned();
    assert_eq!(st["database"][1]["role"], "replica");
    assert_eq!(st["database"][1]["banned"], false);
    let this = ("replica", name.as_str());

    // Healthy: reads go to the replica.
    let before = Scrape::fetch(&metrics).await;
    let after = read_three(&client, &metrics, 300).await;
    assert_eq!(after.get("db_router_replica_healthy", &[this]), 1.0);
    assert_eq!(
        after.delta(
            &before,
            "db_router_reads_total",
            &[("role", "replica"), this]
        ),
        3.0
    );
    assert_eq!(after.delta(&before, "db_router_fallbacks_total", &[]), 0.0);
    assert!(
        after
            .label_values("db_router_replica_lag_seconds", "replica")
            .contains(&name)
    );

    // Stopped: banned once (by the probe or by a read), reads fall back.
    let before = Scrape::fetch(&metrics).await;
    pg.stop_replica();
    wait_until("the replica banned", Duration::from_secs(20), || async {
        Scrape::fetch(&metrics)
            .await
            .get("db_router_replica_healthy", &[this])
            == 0.0
    })
    .await;
    let banned = Scrape::fetch(&metrics).await;
    assert_eq!(
        banned.delta(&before, "db_router_replica_bans_total", &[this]),
        1.0
    );
    let after = read_three(&client, &metrics, 310).await;
    assert_eq!(
        after.delta(
            &banned,
            "db_router_fallbacks_total",
            &[("reason", "replicas_unhealthy")]
        ),
        3.0
    );
    assert_eq!(
        after.delta(&banned, "db_router_reads_total", &[("role", "primary")]),
        3.0
    );
    assert_eq!(
        after.delta(&banned, "db_router_reads_total", &[("role", "replica")]),
        0.0
    );
    assert_eq!(status(&admin).await["database"][1]["banned"], true);
    say("metrics: replica banned once, reads fell back exactly");

    // Back: re-admitted once, reads return to it.
    pg.start_replica().await;
    wait_until(
        "the replica re-admitted and within lag",
        Duration::from_secs(30),
        || async {
            let now = Scrape::fetch(&metrics).await;
            now.get("db_router_replica_healthy", &[this]) == 1.0
                && now.get("db_router_replica_within_lag", &[this]) == 1.0
        },
    )
    .await;
    let back = Scrape::fetch(&metrics).await;
    assert_eq!(
        back.delta(&banned, "db_router_replica_readmissions_total", &[this]),
        1.0
    );
    assert_eq!(
        back.delta(&banned, "db_router_replica_bans_total", &[this]),
        0.0
    );
    let after = read_three(&client, &metrics, 320).await;
    assert_eq!(
        after.delta(&back, "db_router_reads_total", &[("role", "replica"), this]),
        3.0
    );
    assert_eq!(after.delta(&back, "db_router_fallbacks_total", &[]), 0.0);
    say("metrics: replica re-admitted once, reads back on it");
    drop(shop);
}

/// `pg_current_wal_lsn()` of `primary`, as text.
async fn wal_position(primary: &PgPool) -> String {
    sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(primary)
        .await
        .expect("the primary's WAL position")
}

/// Bytes of WAL the replica has yet to replay to reach `position`
/// (negative once it is past it).
async fn replay_behind(replica: &PgPool, position: &str) -> i64 {
    sqlx::query_scalar("SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::bigint")
        .bind(position)
        .fetch_one(replica)
        .await
        .expect("the replica's replay position")
}

/// Waits until the replica replayed the primary's WAL up to now.
async fn replayed(primary: &PgPool, replica: &PgPool) {
    let position = wal_position(primary).await;
    wait_until(
        "the replica to replay the primary's WAL",
        Duration::from_secs(20),
        || async { replay_behind(replica, &position).await <= 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_racing_a_fill() {
    let pg = PgPair::start().await;
    let redis = RedisServer::start(RedisConfig::new()).await;
    let redis_url = redis.url();
    let database = pg.primary_url("stateful");
    let replica_url = pg.replica_url("stateful");
    let (shop, client, admin) = shop(&[
        ("SESSION_STORE", "memory"),
        ("CACHE", "redis"),
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_CLUSTER_URLS", ""),
        ("DATABASE_URL", database.as_str()),
        ("DATABASE_REPLICA_URLS", replica_url.as_str()),
    ])
    .await;
    let metrics = format!("{admin}/metrics");
    let primary = pg.connect(pg.primary_port, "stateful").await;
    let replica = pg.connect(pg.replica_port, "stateful").await;
    // The shop's migrations are on the replica, and the router uses it.
    replayed(&primary, &replica).await;
    wait_until("the replica usable", Duration::from_secs(20), || async {
        let st = status(&admin).await;
        st["database"][1]["banned"] == false && st["database"][1]["within_lag"] == true
    })
    .await;
    let name = status(&admin).await["database"][1]["name"]
        .as_str()
        .expect("the replica in /status")
        .to_owned();
    let this = ("replica", name.as_str());
    const SKU: &str = "SKU-0042";
    let old: i64 = sqlx::query_scalar("SELECT price_cents FROM products WHERE sku = $1")
        .bind(SKU)
        .fetch_one(&primary)
        .await
        .expect("the old price");
    let new = old + 1000;

    // The replica holds a lock on the products that the primary no longer
    // holds: taken on the primary, replayed, replay paused, released on the
    // primary.
    let mut lock = primary.begin().await.expect("BEGIN");
    sqlx::query("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("LOCK TABLE");
    // A commit flushes the WAL, the lock's record with it.
    sqlx::query("SELECT txid_current()")
        .execute(&primary)
        .await
        .expect("a commit");
    wait_until(
        "the replica to hold the lock",
        Duration::from_secs(20),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_locks \
             WHERE relation = 'products'::regclass AND mode = 'AccessExclusiveLock'",
            )
            .fetch_one(&replica)
            .await
            .expect("the replica's locks")
                == 1
        },
    )
    .await;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica)
        .await
        .expect("pause replay");
    wait_until("replay paused", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, String>("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(&replica)
            .await
            .expect("the pause state")
            == "paused"
    })
    .await;
    lock.rollback().await.expect("ROLLBACK");

    // A read misses and its load waits on the replica's lock.
    let before = Scrape::fetch(&metrics).await;
    let read = {
        let client = client.clone();
        tokio::spawn(async move { client.get_json(&format!("/api/products/{SKU}")).await })
    };
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE '%FROM products WHERE sku%'",
        )
        .fetch_one(&replica)
        .await
        .expect("the replica's activity")
            == 1
    };
    wait_until(
        "the product's load waiting on the replica",
        Duration::from_secs(20),
        || async {
            if read.is_finished() {
                let activity: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT query, wait_event_type, wait_event FROM pg_stat_activity",
                )
                .fetch_all(&replica)
                .await
                .unwrap_or_default();
                panic!(
                    "the read did not wait on the replica; /status: {}; replica activity: {activity:?}",
                    status(&admin).await
                );
            }
            waiting().await
        },
    )
    .await;

    // The price changes on the primary and the cached copies are
    // invalidated while that load is in flight.
    let res = reqwest::Client::new()
        .put(format!("{admin}/products/{SKU}/price"))
        .json(&json!({ "price_cents": new }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("PUT the price");
    let status_code = res.status();
    let changed: Value = res.json().await.expect("the product as JSON");
    assert_eq!(status_code, 200, "{changed}");
    assert_eq!(changed["price_cents"], new);
    assert!(
        !read.is_finished(),
        "the read finished before the invalidation"
    );

    // The replica is behind by exactly the WAL it has not replayed.
    wait_until(
        "the lag gauge to show the replica's lag in bytes",
        Duration::from_secs(20),
        || async {
            let behind = replay_behind(&replica, &wal_position(&primary).await).await;
            let gauge = Scrape::fetch(&metrics)
                .await
                .get("db_router_replica_lag_bytes", &[this]);
            behind > 0 && gauge == behind as f64
        },
    )
    .await;

    // Replay resumes: the load ends, and its value is not stored.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica)
        .await
        .expect("resume replay");
    let raced = read.await.expect("the read task");
    assert_eq!(raced["sku"], SKU);
    let after = Scrape::fetch(&metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| after.delta(&before, name, labels);
    let products = ("cache", PRODUCTS);
    let listing = ("cache", "shop:listing:v1");
    assert_eq!(moved("cache_loads_total", &[products]), 1.0);
    assert_eq!(moved("cache_fills_discarded_total", &[products]), 1.0);
    assert_eq!(moved("cache_invalidations_sent_total", &[products]), 1.0);
    // The list of every product, and the product's page.
    assert_eq!(moved("cache_invalidations_sent_total", &[listing]), 2.0);
    assert_eq!(moved("db_router_writes_total", &[]), 1.0);
    assert_eq!(moved("db_router_transactions_total", &[]), 1.0);
    say("metrics: the fill that raced the price change was discarded, counted once");

    // Once the replica has the change, the next read loads the new price;
    // the gauge is back to zero.
    replayed(&primary, &replica).await;
    wait_until(
        "the lag gauge back to zero",
        Duration::from_secs(20),
        || async {
            Scrape::fetch(&metrics)
                .await
                .get("db_router_replica_lag_bytes", &[this])
                == 0.0
        },
    )
    .await;
    let before = Scrape::fetch(&metrics).await;
    let product = client.get_json(&format!("/api/products/{SKU}")).await;
    assert_eq!(product["price_cents"], new);
    let after = Scrape::fetch(&metrics).await;
    assert_eq!(after.delta(&before, "cache_loads_total", &[products]), 1.0);
    assert_eq!(
        after.delta(&before, "cache_fills_discarded_total", &[products]),
        0.0
    );
    let product = client.get_json(&format!("/api/products/{SKU}")).await;
    assert_eq!(product["price_cents"], new, "the cached copy");
    say("metrics: the next read showed the new price");

    // Bad input to the admin route: a clear 4xx.
    let put = |sku: &str, body: Value| {
        reqwest::Client::new()
            .put(format!("{admin}/products/{sku}/price"))
            .json(&body)
            .send()
    };
    assert_eq!(
        put("SKU-9999", json!({ "price_cents": 1 }))
            .await
            .expect("PUT")
            .status(),
        404
    );
    assert_eq!(
        put(SKU, json!({ "price_cents": -1 }))
            .await
            .expect("PUT")
            .status(),
        422
    );
    assert_eq!(
        put(SKU, json!({ "price": 1 })).await.expect("PUT").status(),
        422
    );
    // Never on the public port.
    let res = reqwest::Client::new()
        .put(client.url(&format!("/products/{SKU}/price")))
        .json(&json!({ "price_cents": 1 }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.status(), 404);
    drop(shop);
    drop(redis);
}
