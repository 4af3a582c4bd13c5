//! A load balancer node lost under traffic. An ELB has a node in each
//! availability zone behind one DNS name; a client that cannot connect to
//! one address moves on to the next. Played here with two HAProxy
//! processes in front of the same two shop processes (sessions in Redis),
//! and 20 browsers, each starting on one of them and moving to the other
//! after a refused or broken connection. One HAProxy is killed (SIGKILL),
//! and started again 3 s later, as a replaced node.
//!
//! What must hold: no HTTP error at all (a request through the dead node
//! fails at the connection, and the browser's next one goes through the
//! other node); every browser continues its session through the other
//! node, with no acknowledged add lost; the replaced node serves the same
//! carts. The test prints the failed connections and how long after the
//! kill the last one happened, the figures of `docs/reliability.md`.

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults;
use e2e::fleets;
use e2e::shoppers::{Shoppers, sku};
use test_support::haproxy::{Balance, Haproxy};
use test_support::say;

const BROWSERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancer_node_killed_under_traffic_loses_no_session_and_no_add() {
    let mut fleet = fleets::on_shared_redis(2, &[]).await;
    let addrs: Vec<_> = fleet.shops.iter().map(|s| s.addr).collect();
    let other = Haproxy::start(&addrs, Balance::RoundRobin).await;
    let (a, b) = (fleet.url(), other.url());

    // Half the browsers resolve the name to node A first, half to B.
    let routes: Vec<Vec<ShopClient>> = (0..BROWSERS)
        .map(|i| {
            let first = ShopClient::new(if i % 2 == 0 { &a } else { &b });
            let second = first.at(if i % 2 == 0 { &b } else { &a });
            vec![first, second]
        })
        .collect();
    for (i, r) in routes.iter().enumerate() {
        let p = faults::add(&r[0], &sku(i, 0)).await;
        assert_eq!(p.status, Some(200), "before the fault: {}", p.label());
    }
    let shoppers = Shoppers::start(routes, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let killed = Instant::now();
    fleet.lb.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replacing = Instant::now();
    fleet.lb.restart().await;
    let replaced = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let run = shoppers.stop().await;

    let tally = run.tally();
    let failed = tally.counts.get("transport error").copied().unwrap_or(0);
    let last_failure = run.last_failure_after(killed);
    let lost = run.lost("balancer node killed").await;
    say(&format!(
        "balancer node killed under {BROWSERS} browsers: {} adds acknowledged, {lost} lost; \
         requests {}; {failed} failed at the connection, the last ending {last_failure:?} \
         after the kill; the replaced node was healthy {:?} after it was started",
        run.acked(),
        tally.line(),
        replaced - replacing,
    ));
    assert!(
        tally
            .unexpected(&[200])
            .iter()
            .all(|(k, _)| k == "transport error"),
        "HTTP errors from the surviving node: {}",
        tally.line()
    );
    assert!(
        failed <= BROWSERS,
        "more failed connections ({failed}) than one per browser: \
         the browsers did not move to the other node"
    );
    assert_eq!(lost, 0, "acknowledged adds were lost");
    let on_b = run.browsers.iter().filter(|x| x.client().base == b).count();
    assert_eq!(
        on_b, BROWSERS,
        "every browser should end on the surviving node"
    );

    // The replaced node serves the same sessions.
    for (i, browser) in run.browsers.iter().enumerate() {
        let through_a = browser.client().at(&a);
        let cart = faults::get(&through_a, "/api/cart").await;
        assert_eq!(
            cart.status,
            Some(200),
            "browser {i} through the replaced node"
        );
        let have = faults::skus(&cart.body);
        assert!(
            browser.acked.iter().all(|s| have.contains(s)),
            "browser {i}: the replaced node shows another cart"
        );
    }
}
