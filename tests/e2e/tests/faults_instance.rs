//! An app instance lost under traffic: three shop processes behind
//! round-robin HAProxy (health checks every 200 ms), sessions in Redis,
//! 24 browsers adding to their carts without pause. One instance is killed
//! (SIGKILL) and, 3 s later, a replacement starts on its address, as an
//! auto-scaling group replaces a lost instance.
//!
//! What must hold: the browsers' sessions continue on the other instances;
//! the only failures are the requests the dead instance held or was handed
//! before the health check took it out (a broken connection, or the
//! balancer's `502` or `503`), none once the replacement starts; the
//! balancer sends traffic to the replacement by itself;
//! and no add acknowledged with `200` is lost. The test prints how many
//! requests failed and how long after the kill the last one ended, the
//! figures of `docs/reliability.md`.

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults;
use e2e::fleets;
use e2e::shoppers::{Shoppers, sku};
use test_support::say;

const BROWSERS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_under_traffic_loses_no_acknowledged_add() {
    let mut fleet = fleets::on_shared_redis(3, &[]).await;
    let clients: Vec<ShopClient> = (0..BROWSERS)
        .map(|_| ShopClient::new(fleet.url()))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        let p = faults::add(c, &sku(i, 0)).await;
        assert_eq!(p.status, Some(200), "before the fault: {}", p.label());
    }
    let shoppers = Shoppers::start(
        clients.iter().map(|c| vec![c.clone()]).collect(),
        Duration::from_millis(10),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let killed = Instant::now();
    fleet.shops[1].kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replacing = Instant::now();
    fleet.shops[1].restart().await;
    let replaced = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let run = shoppers.stop().await;

    let tally = run.tally();
    let after_kill = run.tally_between(killed, replacing);
    let during_replacement = run.tally_between(replacing, Instant::now());
    let recovered = run.last_failure_after(killed);
    let lost = run.lost("instance killed").await;
    say(&format!(
        "instance killed under {BROWSERS} browsers: {} adds acknowledged, {lost} lost; \
         all requests {}; from the kill until the replacement started {}; \
         while and after it started {}; last failure ended {recovered:?} after the kill; \
         the replacement answered {:?} after it was started",
        run.acked(),
        tally.line(),
        after_kill.line(),
        during_replacement.line(),
        replaced - replacing,
    ));
    assert!(
        tally
            .unexpected(&[200, 502, 503])
            .iter()
            .all(|(k, _)| k == "transport error"),
        "answers other than 200, the balancer's 502/503 and broken connections: {}",
        tally.line()
    );
    assert!(
        during_replacement.unexpected(&[200]).is_empty(),
        "the replacement's start failed requests: {}",
        during_replacement.line()
    );
    assert_eq!(lost, 0, "acknowledged adds were lost");
    assert!(
        after_kill.of(200) > 0 && during_replacement.of(200) > 0,
        "the sessions did not continue on the other instances"
    );

    // The balancer sends traffic to the replacement again by itself: its
    // address shows in the footer of the pages it serves.
    let served_by_it = fleet.shops[1].addr.to_string();
    let browser = &run.browsers[0];
    let mut seen = false;
    for _ in 0..12 {
        if browser.client().page("/").await.contains(&served_by_it) {
            seen = true;
            break;
        }
    }
    assert!(seen, "no page came from the replacement {served_by_it}");
}
