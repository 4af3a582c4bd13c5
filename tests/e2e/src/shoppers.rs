//! Browsers adding to their carts without pause while a fault is made, and
//! what came of it: every answer, the adds acknowledged with `200`, and
//! whether each of those is in its cart afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client::ShopClient;
use crate::faults::{self, Probe, Tally};

/// The SKU a browser adds as its `n`-th item: browsers spread over 400
/// SKUs, and the same browser comes back to one only every 400 adds.
pub fn sku(browser: usize, n: usize) -> String {
    format!("SKU-{:04}", (browser * 7 + n) % 400)
}

/// One browser's run.
#[derive(Debug)]
pub struct Browser {
    /// The addresses it can reach the shop at, one cookie jar: the load
    /// balancer's nodes, as the addresses a DNS name resolves to.
    pub routes: Vec<ShopClient>,
    /// Which of `routes` it used last.
    pub route: usize,
    /// Every request, in order.
    pub probes: Vec<Probe>,
    /// The SKUs whose add was answered `200`.
    pub acked: Vec<String>,
}

impl Browser {
    /// The view of the browser it talks through now.
    pub fn client(&self) -> &ShopClient {
        &self.routes[self.route]
    }
}

/// Browsers adding to their carts until [`stop`](Self::stop).
#[derive(Debug)]
pub struct Shoppers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Browser>>,
}

impl Shoppers {
    /// Starts one task per browser. Each adds [`sku`]s one after the
    /// other, `pause` apart. After a transport error (a refused or broken
    /// connection) a browser moves on to its next route, as a client does
    /// to the next address of a name; an HTTP error status keeps it where
    /// it is.
    ///
    /// # Panics
    ///
    /// If a browser has no route.
    pub fn start(browsers: Vec<Vec<ShopClient>>, pause: Duration) -> Shoppers {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = browsers
            .into_iter()
            .enumerate()
            .map(|(i, routes)| {
                assert!(!routes.is_empty(), "browser {i} has no route");
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut b = Browser {
                        routes,
                        route: 0,
                        probes: Vec::new(),
                        acked: Vec::new(),
                    };
                    let mut n = 1;
                    while !stop.load(Ordering::Relaxed) {
                        let sku = sku(i, n);
                        n += 1;
                        let probe = faults::add(b.client(), &sku).await;
                        match probe.status {
                            Some(200) => b.acked.push(sku),
                            None => b.route = (b.route + 1) % b.routes.len(),
                            Some(_) => {}
                        }
                        b.probes.push(probe);
                        tokio::time::sleep(pause).await;
                    }
                    b
                })
            })
            .collect();
        Shoppers { stop, tasks }
    }

    /// Stops the browsers after their request in flight.
    ///
    /// # Panics
    ///
    /// If a browser's task panicked.
    pub async fn stop(self) -> Run {
        self.stop.store(true, Ordering::Relaxed);
        let mut browsers = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            browsers.push(t.await.expect("a browser's task"));
        }
        Run { browsers }
    }
}

/// What the browsers saw.
#[derive(Debug)]
pub struct Run {
    /// Each browser, in the order started.
    pub browsers: Vec<Browser>,
}

impl Run {
    /// Every request of every browser.
    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.browsers.iter().flat_map(|b| &b.probes)
    }

    /// The requests by outcome.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for p in self.probes() {
            tally.count(p);
        }
        tally
    }

    /// The requests sent at or after `from` (and before `to`), by outcome.
    pub fn tally_between(&self, from: Instant, to: Instant) -> Tally {
        let mut tally = Tally::default();
        for p in self.probes().filter(|p| p.sent >= from && p.sent < to) {
            tally.count(p);
        }
        tally
    }

    /// Adds acknowledged with `200`.
    pub fn acked(&self) -> usize {
        self.browsers.iter().map(|b| b.acked.len()).sum()
    }

    /// How long after `t` the first request sent at or after it was
    /// answered `200`.
    pub fn first_ok_after(&self, t: Instant) -> Option<Duration> {
        self.probes()
            .filter(|p| p.sent >= t && p.status == Some(200))
            .map(|p| p.sent + p.took - t)
            .min()
    }

    /// How long after `t` the last request that was not answered `200`
    /// ended (`None` when every request ending after `t` was a `200`).
    pub fn last_failure_after(&self, t: Instant) -> Option<Duration> {
        self.probes()
            .filter(|p| p.status != Some(200) && p.sent + p.took >= t)
            .map(|p| p.sent + p.took - t)
            .max()
    }

    /// Reads every browser's cart through the route it used last and
    /// counts the acknowledged adds missing from it, printing each
    /// browser's missing SKUs.
    ///
    /// # Panics
    ///
    /// If a cart cannot be read (`200`).
    pub async fn lost(&self, what: &str) -> usize {
        let mut lost = 0;
        for (i, b) in self.browsers.iter().enumerate() {
            let cart = faults::get(b.client(), "/api/cart").await;
            assert_eq!(
                cart.status,
                Some(200),
                "{what}: the cart of browser {i}: {}",
                cart.label()
            );
            let have = faults::skus(&cart.body);
            let missing: Vec<&String> = b.acked.iter().filter(|s| !have.contains(s)).collect();
            if !missing.is_empty() {
                test_support::say(&format!(
                    "{what}: browser {i} lost acknowledged adds {missing:?}"
                ));
            }
            lost += missing.len();
        }
        lost
    }
}
