//! A bounded soak: 48 browsers, each with its own session, shop for about
//! 40 s through HAProxy (round-robin) over three shop processes that keep
//! sessions in a private Redis with an append-only file synced on every
//! write. Redis is killed and restarted twice during the run.
//!
//! The test counts responses by status and prints them. It fails on any
//! 5xx other than `503`, on a dropped connection or a request slower than
//! the hang bound, and if any cart add acknowledged with `200` is missing
//! from its cart at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Tally};
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::redis::{RedisConfig, RedisServer};
use test_support::say;

const CLIENTS: usize = 48;
const RUN: Duration = Duration::from_secs(40);

/// One browser: mostly adds (a new SKU each time), some cart and product
/// reads. Its tally and the SKUs acknowledged with `200`.
async fn browse(client: ShopClient, me: usize, stop: Arc<AtomicBool>) -> (Tally, Vec<String>) {
    let mut tally = Tally::default();
    let mut acked = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let sku = format!("SKU-{:04}", (me * 37 + n) % 400);
        let probe = match n % 4 {
            0 => faults::get(&client, "/api/cart").await,
            1 => faults::get(&client, &format!("/api/products/{sku}")).await,
            _ => {
                let probe = faults::add(&client, &sku).await;
                if probe.status == Some(200) {
                    acked.push(sku);
                }
                probe
            }
        };
        tally.count(&probe);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (tally, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_two_redis_restarts_keeps_every_acknowledged_add() {
    let started = Instant::now();
    let mut redis = RedisServer::start(RedisConfig::new().with_persistence()).await;
    let url = redis.url();
    let fleet = Fleet::start(
        3,
        &[
            ("SESSION_STORE", "redis"),
            ("REDIS_URL", url.as_str()),
            // Not the shared cluster the test environment may name.
            ("REDIS_CLUSTER_URLS", ""),
            ("SESSION_STORE_TIMEOUT_MS", "1000"),
            ("COOKIE_SECURE", "false"),
        ],
        Balance::RoundRobin,
    )
    .await;
    let clients: Vec<ShopClient> = (0..CLIENTS).map(|_| ShopClient::new(fleet.url())).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(browse(c.clone(), i, stop.clone())))
        .collect();

    let run_start = Instant::now();
    for at in [RUN / 3, RUN * 2 / 3] {
        tokio::time::sleep(at.saturating_sub(run_start.elapsed())).await;
        redis.kill();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        redis.restart().await;
        say(&format!(
            "soak: Redis killed and restarted at {:?}",
            run_start.elapsed()
        ));
    }
    tokio::time::sleep(RUN.saturating_sub(run_start.elapsed())).await;
    stop.store(true, Ordering::Relaxed);

    let mut tally = Tally::default();
    let mut acked = Vec::new();
    for t in tasks {
        let (t, ok) = t.await.expect("browser task");
        tally.merge(&t);
        acked.push(ok);
    }
    let total: usize = tally.counts.values().sum();
    say(&format!(
        "soak: {CLIENTS} clients, {:?}, {total} requests: {}",
        run_start.elapsed(),
        tally.line()
    ));
    let bad = tally.unexpected(&[200, 503]);
    assert!(bad.is_empty(), "unexpected outcomes: {bad:?}");
    assert!(tally.of(503) > 0, "no request saw the Redis restarts");
    assert!(
        tally.of(200) > total / 2,
        "most requests should succeed: {}",
        tally.line()
    );

    let mut lost = Vec::new();
    for (i, (client, ok)) in clients.iter().zip(&acked).enumerate() {
        let cart = faults::get(client, "/api/cart").await;
        assert_eq!(cart.status, Some(200), "final cart of client {i}");
        let have = faults::skus(&cart.body);
        lost.extend(
            ok.iter()
                .filter(|s| !have.contains(s))
                .map(|s| (i, s.clone())),
        );
    }
    let acked_total: usize = acked.iter().map(Vec::len).sum();
    say(&format!(
        "soak: {acked_total} acknowledged adds, {} missing; took {:?}",
        lost.len(),
        started.elapsed()
    ));
    assert!(lost.is_empty(), "acknowledged adds lost: {lost:?}");
}
