//! The DynamoDB endpoint down and back under the shop: two shop
//! processes behind HAProxy keep sessions in a private dynalite (the
//! DynamoDB emulator) that the test kills and restarts.
//!
//! The private emulator keeps its tables in a LevelDB directory (`--path`)
//! so that, like the real service, the table outlives the outage. The
//! shared emulator of `scripts/services.sh` runs in memory and would come
//! back empty, without even the table; see `docs/reliability.md` for what
//! that means compared with DynamoDB.

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Probe, Tally};
use test_support::dynalite::Dynalite;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::say;

const STORE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Two store calls may time out in turn (the causal-token carrier's
/// session load, then the handler's), plus the shop and a loaded machine.
const BOUND: Duration = Duration::from_millis(3000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_down_gives_bounded_503s_and_the_shops_recover() {
    let started = Instant::now();
    let mut dynamo = Dynalite::start().await;
    let endpoint = dynamo.endpoint();
    let timeout = STORE_TIMEOUT.as_millis().to_string();
    let fleet = Fleet::start(
        2,
        &[
            ("SESSION_STORE", "dynamodb"),
            ("DYNAMODB_ENDPOINT", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("SESSION_STORE_TIMEOUT_MS", timeout.as_str()),
            ("COOKIE_SECURE", "false"),
        ],
        Balance::RoundRobin,
    )
    .await;
    let alice = ShopClient::new(fleet.url());
    let mut acked = Vec::new();
    for sku in ["SKU-0001", "SKU-0002", "SKU-0003"] {
        let p = faults::add(&alice, sku).await;
        assert_eq!(p.status, Some(200), "before the outage: {}", p.body);
        acked.push(sku);
    }

    dynamo.kill();
    let mut probes: Vec<Probe> = Vec::new();
    for sku in ["SKU-0010", "SKU-0011", "SKU-0012"] {
        probes.push(faults::add(&alice, sku).await);
        probes.push(faults::get(&alice, "/api/cart").await);
        probes.push(faults::add(&ShopClient::new(fleet.url()), sku).await);
    }
    let mut tally = Tally::default();
    for p in &probes {
        tally.count(p);
        assert_eq!(
            p.status,
            Some(503),
            "while DynamoDB was down: {} {}",
            p.label(),
            p.body
        );
        assert!(p.retry_after, "a 503 without Retry-After");
        assert!(p.took <= BOUND, "a request took {:?}", p.took);
    }
    say(&format!(
        "dynamodb down: {} (store timeout {STORE_TIMEOUT:?})",
        tally.line()
    ));

    dynamo.restart().await;
    let back = Instant::now();
    loop {
        let p = faults::get(&alice, "/api/cart").await;
        if p.status == Some(200) {
            let have = faults::skus(&p.body);
            for s in &acked {
                assert!(
                    have.iter().any(|h| h == s),
                    "acknowledged {s} missing: {have:?}"
                );
            }
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "no recovery within 20 s: {} {}",
            p.label(),
            p.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say(&format!(
        "dynamodb back: first 200 {:?} after the restart",
        back.elapsed()
    ));
    // Existing and new carts work again, without restarting a shop.
    let p = faults::add(&alice, "SKU-0020").await;
    assert_eq!(p.status, Some(200), "{}", p.body);
    let bob = ShopClient::new(fleet.url());
    let p = faults::add(&bob, "SKU-0021").await;
    assert_eq!(p.status, Some(200), "{}", p.body);
    assert_eq!(bob.skus().await, ["SKU-0021"]);
    say(&format!("dynamodb test took {:?}", started.elapsed()));
}
