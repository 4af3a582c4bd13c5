//! Redis faults under the shop: three shop processes behind HAProxy keep
//! their sessions in a private `redis-server` (append-only file synced on
//! every write) that the test kills, restarts and pauses while requests
//! are in flight.
//!
//! What must hold: every request answers `200` or a clear `503` with
//! `Retry-After` within the configured store timeout (each request is
//! timed), never a hang, another 5xx or a dropped connection; the shops
//! recover by themselves once Redis is back; and every cart add that was
//! acknowledged with `200` is in the cart afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Probe, Tally};
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::redis::{RedisConfig, RedisServer};
use test_support::say;

/// `SESSION_STORE_TIMEOUT_MS` of the shops.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// What a request may take at most while Redis is down or paused: two
/// store calls time out in turn (the causal-token carrier's session load,
/// then the handler's), plus HAProxy, the shop and a loaded 2-core
/// machine.
const BOUND: Duration = Duration::from_millis(2000);

async fn fleet(redis: &RedisServer, shops: usize) -> Fleet {
    let url = redis.url();
    let timeout = STORE_TIMEOUT.as_millis().to_string();
    Fleet::start(
        shops,
        &[
            ("SESSION_STORE", "redis"),
            ("REDIS_URL", url.as_str()),
            // Not the shared cluster the test environment may name.
            ("REDIS_CLUSTER_URLS", ""),
            ("SESSION_STORE_TIMEOUT_MS", timeout.as_str()),
            ("COOKIE_SECURE", "false"),
        ],
        Balance::RoundRobin,
    )
    .await
}

fn sku(n: usize) -> String {
    format!("SKU-{:04}", n % 400)
}

/// One browser adding distinct SKUs until `stop`: every probe, and the
/// SKUs acknowledged with `200`.
async fn shopper(
    client: ShopClient,
    first: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<(String, Probe)>, Vec<String>) {
    let mut probes = Vec::new();
    let mut acked = Vec::new();
    let mut n = first;
    while !stop.load(Ordering::Relaxed) {
        let sku = sku(n);
        n += 1;
        let probe = faults::add(&client, &sku).await;
        if probe.status == Some(200) {
            acked.push(sku.clone());
        }
        probes.push((sku, probe));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (probes, acked)
}

fn check_outage_probes(what: &str, probes: &[&Probe]) -> Tally {
    let mut tally = Tally::default();
    for p in probes {
        tally.count(p);
        assert!(
            matches!(p.status, Some(200 | 503)),
            "{what}: a request answered {} after {:?}",
            p.label(),
            p.took
        );
        if p.status == Some(503) {
            assert!(p.retry_after, "{what}: a 503 without Retry-After");
        }
        assert!(
            p.took <= BOUND,
            "{what}: a request took {:?} (bound {BOUND:?}, store timeout {STORE_TIMEOUT:?})",
            p.took
        );
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_traffic_gives_bounded_503s_and_loses_no_acknowledged_add() {
    let started = Instant::now();
    let mut redis = RedisServer::start(RedisConfig::new().with_persistence()).await;
    let fleet = fleet(&redis, 3).await;
    let clients: Vec<ShopClient> = (0..8).map(|_| ShopClient::new(fleet.url())).collect();
    for (i, c) in clients.iter().enumerate() {
        let p = faults::add(c, &sku(i * 50)).await;
        assert_eq!(p.status, Some(200), "before the outage: {}", p.body);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(shopper(c.clone(), i * 50 + 1, stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarting = Instant::now();
    redis.restart().await;
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut all = Vec::new();
    let mut acked = Vec::new();
    for t in tasks {
        let (probes, ok) = t.await.expect("shopper");
        all.push(probes);
        acked.push(ok);
    }
    let flat: Vec<&Probe> = all.iter().flatten().map(|(_, p)| p).collect();
    let tally = check_outage_probes("Redis killed", &flat);
    let during: Vec<&Probe> = flat
        .iter()
        .copied()
        .filter(|p| p.sent >= killed && p.sent + p.took <= restarting)
        .collect();
    let mut outage = Tally::default();
    for p in &during {
        outage.count(p);
    }
    say(&format!(
        "redis killed: all requests {}; while down ({:?}): {}",
        tally.line(),
        restarting - killed,
        outage.line()
    ));
    assert!(
        outage.of(503) > 0,
        "no request saw the outage: the test proves nothing"
    );
    assert_eq!(outage.of(200), 0, "a 200 while Redis was down");

    // Every shopper works again without any shop being restarted.
    for (i, probes) in all.iter().enumerate() {
        assert!(
            probes
                .iter()
                .any(|(_, p)| p.sent > restarted && p.status == Some(200)),
            "shopper {i} got no 200 in the 1.5 s after Redis came back"
        );
    }
    // Nothing acknowledged is missing.
    for (i, (client, ok)) in clients.iter().zip(&acked).enumerate() {
        let cart = faults::get(client, "/api/cart").await;
        assert_eq!(cart.status, Some(200), "cart of shopper {i}");
        let have = faults::skus(&cart.body);
        let lost: Vec<&String> = ok.iter().filter(|s| !have.contains(s)).collect();
        assert!(
            lost.is_empty(),
            "shopper {i} lost acknowledged adds: {lost:?}"
        );
    }
    let acked_total: usize = acked.iter().map(Vec::len).sum();
    say(&format!(
        "redis killed: {acked_total} acknowledged adds, all present; test took {:?}",
        started.elapsed()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_times_out_within_the_bound_and_recovers() {
    let redis = RedisServer::start(RedisConfig::new().with_persistence()).await;
    let fleet = fleet(&redis, 2).await;
    let client = ShopClient::new(fleet.url());
    let mut acked = Vec::new();
    for n in 0..3 {
        let p = faults::add(&client, &sku(n)).await;
        assert_eq!(p.status, Some(200), "{}", p.body);
        acked.push(sku(n));
    }

    redis.pause();
    let paused = Instant::now();
    let mut probes = Vec::new();
    for n in 10..13 {
        probes.push(faults::add(&client, &sku(n)).await);
        probes.push(faults::get(&client, "/api/cart").await);
    }
    probes.push(faults::add(&ShopClient::new(fleet.url()), &sku(20)).await);
    redis.resume();
    let paused_for = paused.elapsed();

    let refs: Vec<&Probe> = probes.iter().collect();
    let tally = check_outage_probes("Redis paused", &refs);
    for p in &probes {
        assert_eq!(p.status, Some(503), "answered while Redis was paused");
        // A paused server accepts the connection and never answers: only
        // the timeout ends the call.
        assert!(
            p.took >= STORE_TIMEOUT - Duration::from_millis(50),
            "a 503 after {:?}, before the {STORE_TIMEOUT:?} timeout could fire",
            p.took
        );
    }
    say(&format!(
        "redis paused {paused_for:?}: {} (timeout {STORE_TIMEOUT:?})",
        tally.line()
    ));

    // SIGCONT: the same shops answer again.
    let resumed = Instant::now();
    loop {
        let p = faults::add(&client, &sku(30)).await;
        if p.status == Some(200) {
            acked.push(sku(30));
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "no recovery within 10 s of SIGCONT: {}",
            p.label()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say(&format!(
        "redis paused: first 200 {:?} after SIGCONT",
        resumed.elapsed()
    ));
    let cart = faults::get(&client, "/api/cart").await;
    let have = faults::skus(&cart.body);
    for s in &acked {
        assert!(have.contains(s), "acknowledged {s} missing from {have:?}");
    }
}
