//! Memcached faults under the shop: three shop processes behind HAProxy
//! keep their sessions on two private `memcached` nodes, and the test kills
//! one node while shoppers add to their carts, then starts it again.
//!
//! What must hold: the sessions on the killed node answer a clear `503`
//! with `Retry-After` within the bound while it is down (never a silent
//! fresh session, another 5xx or a hang); every session on the other node
//! keeps answering `200` and loses nothing; and the shops work with the
//! restarted node by themselves. Memcached does not replicate: the
//! sessions the killed node held are gone, and their shoppers start new
//! carts (the documented trade-off of the Memcached store).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Probe, Tally};
use session_core::Id;
use session_stores::MemcachedStore;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::memcached::Memcached;
use test_support::say;

/// `SESSION_STORE_TIMEOUT_MS` of the shops.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// What a request may take at most while a node is down: a refused
/// connection fails at once on loopback, so this is the shop, HAProxy and
/// a loaded 2-core machine, with room for two store calls timing out.
const BOUND: Duration = Duration::from_millis(2000);

const SHOPPERS: usize = 12;

fn sku(n: usize) -> String {
    format!("SKU-{:04}", n % 400)
}

/// One browser adding distinct SKUs until `stop`: every probe, with the
/// SKU it added.
async fn shopper(client: ShopClient, first: usize, stop: Arc<AtomicBool>) -> Vec<(String, Probe)> {
    let mut probes = Vec::new();
    let mut n = first;
    while !stop.load(Ordering::Relaxed) {
        let sku = sku(n);
        n += 1;
        probes.push((sku.clone(), faults::add(&client, &sku).await));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    probes
}

/// The session ID in a `Cookie` header.
fn session_id(cookie: &str) -> Id {
    cookie
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "shop_session")
        .and_then(|(_, v)| Id::parse(v))
        .unwrap_or_else(|| panic!("no session cookie in {cookie:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_node_killed_mid_traffic_fails_only_its_sessions_and_recovers() {
    let started = Instant::now();
    let mut a = Memcached::start().await;
    let b = Memcached::start().await;
    let urls = format!("{},{}", a.addr(), b.addr());
    let timeout = STORE_TIMEOUT.as_millis().to_string();
    let fleet = Fleet::start(
        3,
        &[
            ("SESSION_STORE", "memcached"),
            ("MEMCACHED_URLS", urls.as_str()),
            ("SESSION_STORE_TIMEOUT_MS", timeout.as_str()),
            ("COOKIE_SECURE", "false"),
        ],
        Balance::RoundRobin,
    )
    .await;
    // The same placement as the shops': which node holds each session.
    let placement = MemcachedStore::connect(&urls).await.expect("the two nodes");

    // Shoppers until each node holds at least three sessions.
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    let mut i = 0;
    while on_a.len() < SHOPPERS / 2 || on_b.len() < SHOPPERS / 2 {
        let client = ShopClient::new(fleet.url());
        let p = faults::add(&client, &sku(i * 30)).await;
        assert_eq!(p.status, Some(200), "before the outage: {}", p.body);
        let node = placement
            .node_for(&session_id(&client.cookie_header("/")))
            .to_owned();
        let first = (i * 30, client);
        if node == a.addr() {
            on_a.push(first);
        } else {
            on_b.push(first);
        }
        i += 1;
        assert!(i < 200, "sessions do not spread over both nodes");
    }
    on_a.truncate(SHOPPERS / 2);
    on_b.truncate(SHOPPERS / 2);

    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |list: &[(usize, ShopClient)]| -> Vec<_> {
        list.iter()
            .map(|(first, c)| tokio::spawn(shopper(c.clone(), first + 1, stop.clone())))
            .collect()
    };
    let tasks_a = spawn(&on_a);
    let tasks_b = spawn(&on_b);

    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = Instant::now();
    a.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarting = Instant::now();
    a.restart().await;
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut probes_a = Vec::new();
    for t in tasks_a {
        probes_a.push(t.await.expect("shopper"));
    }
    let mut probes_b = Vec::new();
    for t in tasks_b {
        probes_b.push(t.await.expect("shopper"));
    }

    // Every request: 200, or 503 with Retry-After, within the bound.
    let mut tally = Tally::default();
    for (_, p) in probes_a.iter().chain(&probes_b).flatten() {
        tally.count(p);
        assert!(
            matches!(p.status, Some(200 | 503)),
            "a request answered {} after {:?}",
            p.label(),
            p.took
        );
        if p.status == Some(503) {
            assert!(p.retry_after, "a 503 without Retry-After");
        }
        assert!(
            p.took <= BOUND,
            "a request took {:?} (bound {BOUND:?})",
            p.took
        );
    }

    // The killed node's sessions: 503 while it is down, never a fresh
    // session in its place.
    let mut outage = Tally::default();
    let mut slowest = Duration::ZERO;
    for (_, p) in probes_a.iter().flatten() {
        if p.sent >= killed && p.sent + p.took <= restarting {
            outage.count(p);
            slowest = slowest.max(p.took);
        }
    }
    assert!(
        outage.of(503) > 0,
        "no request saw the outage: the test proves nothing"
    );
    assert_eq!(
        outage.of(200),
        0,
        "a session of the killed node answered 200 while it was down"
    );

    // The other node's sessions: every request answered 200, nothing lost.
    let mut other = Tally::default();
    for (i, ((_, client), probes)) in on_b.iter().zip(&probes_b).enumerate() {
        for (_, p) in probes {
            other.count(p);
        }
        assert!(
            probes.iter().all(|(_, p)| p.status == Some(200)),
            "shopper {i} on the other node was refused: {}",
            other.line()
        );
        let cart = faults::get(client, "/api/cart").await;
        let have = faults::skus(&cart.body);
        let lost: Vec<&String> = probes
            .iter()
            .map(|(sku, _)| sku)
            .filter(|sku| !have.contains(sku))
            .collect();
        assert!(
            lost.is_empty(),
            "shopper {i} on the other node lost {lost:?}"
        );
    }

    // The killed node's shoppers work again without a shop restart; their
    // carts hold what was added after the restart, and no more (Memcached
    // keeps nothing across a restart).
    let mut recovered = Duration::ZERO;
    for (i, ((_, client), probes)) in on_a.iter().zip(&probes_a).enumerate() {
        let first_ok = probes
            .iter()
            .find(|(_, p)| p.sent > restarted && p.status == Some(200))
            .unwrap_or_else(|| panic!("shopper {i} got no 200 in the 1.5 s after the restart"));
        recovered = recovered.max(first_ok.1.sent + first_ok.1.took - restarted);
        let after: Vec<&String> = probes
            .iter()
            .filter(|(_, p)| p.sent > restarted && p.status == Some(200))
            .map(|(sku, _)| sku)
            .collect();
        let cart = faults::get(client, "/api/cart").await;
        assert_eq!(cart.status, Some(200), "cart of shopper {i}");
        let have = faults::skus(&cart.body);
        for sku in &after {
            assert!(
                have.contains(sku),
                "shopper {i} lost {sku}, added after the restart"
            );
        }
    }
    say(&format!(
        "memcached node killed: all requests {}; its sessions while down ({:?}): {}, slowest {:?}; \
         other node's sessions: {}; recovered within {:?} of the restart; test took {:?}",
        tally.line(),
        restarting - killed,
        outage.line(),
        slowest,
        other.line(),
        recovered,
        started.elapsed()
    ));
}
