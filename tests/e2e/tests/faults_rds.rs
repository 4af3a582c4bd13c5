//! The RDS primary lost and its replica promoted, as a Multi-AZ failover
//! does, on PostgreSQL and on MariaDB. Two shop processes behind HAProxy,
//! sessions in Redis, no product cache, and `DATABASE_URL` through a relay
//! playing the RDS endpoint (the DNS name RDS points at the new primary).
//! Eight signed-in browsers place orders without pause: add an item, check
//! out. The replica replicates through a relay, which cuts it off from the
//! primary for 0.5 s (a network partition: the replica falls behind);
//! then the primary is crashed (PostgreSQL `pg_ctl stop -m immediate`,
//! MariaDB SIGKILL), the replica promoted 0.5 s later, and the endpoint
//! moved to it.
//!
//! Twice per database: with the replica asynchronous (a read replica
//! promoted), and synchronous, as Multi-AZ's standby is (PostgreSQL
//! `synchronous_standby_names`; MariaDB semi-synchronous replication
//! waiting after the binary log sync).
//!
//! What must hold: every request answers `200` or `503`; orders work again
//! by themselves, no shop restarted; with the synchronous standby every
//! order acknowledged with `200` is on the new primary. The asynchronous
//! run prints what it lost and does not fail on it. Both print the figures
//! of `docs/reliability.md`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Probe, Tally};
use e2e::fleets;
use e2e::shoppers::sku;
use serde_json::json;
use test_support::endpoint::Endpoint;
use test_support::mariadb::{self, MariaDbPair};
use test_support::postgres::PgPair;
use test_support::{say, unique};

const BROWSERS: usize = 8;

/// An order as the primary holds it: its number and when it was placed
/// (a number alone could be handed out again after a failover).
type OrderKey = (i64, i64);

/// The database pair of one run.
enum Pair {
    Postgres(PgPair),
    MariaDb(Box<MariaDbPair>),
}

impl Pair {
    async fn start(postgres: bool) -> Pair {
        if postgres {
            Pair::Postgres(PgPair::start().await)
        } else {
            Pair::MariaDb(Box::new(MariaDbPair::start().await))
        }
    }

    /// Makes the replica synchronous.
    async fn make_synchronous(&self) {
        match self {
            Pair::Postgres(p) => p.make_synchronous().await,
            Pair::MariaDb(p) => p.make_semi_synchronous().await,
        }
    }

    fn ports(&self) -> (u16, u16) {
        match self {
            Pair::Postgres(p) => (p.primary_port, p.replica_port),
            Pair::MariaDb(p) => (p.primary.port, p.replica.port),
        }
    }

    /// The shop's `DATABASE_URL` through `endpoint`.
    fn url(&self, endpoint: &Endpoint) -> String {
        match self {
            Pair::Postgres(_) => {
                format!("postgres://postgres@127.0.0.1:{}/stateful", endpoint.port)
            }
            Pair::MariaDb(_) => format!(
                "mysql://root@127.0.0.1:{}/{}",
                endpoint.port,
                mariadb::DATABASE
            ),
        }
    }

    /// Makes the replica replicate through `relay`.
    async fn replicate_through(&self, relay: &Endpoint) {
        match self {
            Pair::Postgres(p) => p.replicate_through(relay.port).await,
            Pair::MariaDb(p) => p.replicate_through(relay.port).await,
        }
    }

    /// Crashes the primary.
    fn crash_primary(&mut self) {
        match self {
            Pair::Postgres(p) => p.crash_primary(),
            Pair::MariaDb(p) => p.primary.kill(),
        }
    }

    /// Promotes the replica.
    async fn promote(&self) {
        match self {
            Pair::Postgres(p) => p.promote_replica(),
            Pair::MariaDb(p) => p.promote_replica().await,
        }
    }

    /// Every order on the replica (the new primary once promoted).
    async fn orders_on_replica(&self) -> BTreeSet<OrderKey> {
        match self {
            Pair::Postgres(p) => {
                let pool = p.connect(p.replica_port, "stateful").await;
                let rows: Vec<OrderKey> = sqlx::query_as("SELECT id, created_at_ms FROM orders")
                    .fetch_all(&pool)
                    .await
                    .expect("the orders on the replica");
                pool.close().await;
                rows.into_iter().collect()
            }
            Pair::MariaDb(p) => p
                .replica
                .must(&format!(
                    "SELECT id, created_at_ms FROM {}.orders",
                    mariadb::DATABASE
                ))
                .await
                .lines()
                .filter_map(|l| {
                    let (id, at) = l.split_once('\t')?;
                    Some((id.parse().ok()?, at.parse().ok()?))
                })
                .collect(),
        }
    }
}

/// One browser placing orders until `stop`: every request, and the orders
/// acknowledged with `200`.
async fn buyer(client: ShopClient, browser: usize, until: Instant) -> (Vec<Probe>, Vec<OrderKey>) {
    let mut probes = Vec::new();
    let mut acked = Vec::new();
    let mut n = 1;
    while Instant::now() < until {
        let add = faults::add(&client, &sku(browser, n)).await;
        n += 1;
        let added = add.status == Some(200);
        probes.push(add);
        if !added {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let order = faults::post(&client, "/api/checkout", &json!({})).await;
        if order.status == Some(200) {
            let key = (
                order.body["id"].as_i64(),
                order.body["created_at_ms"].as_i64(),
            );
            if let (Some(id), Some(at)) = key {
                acked.push((id, at));
            } else {
                panic!("an order without its number: {}", order.body);
            }
        }
        probes.push(order);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (probes, acked)
}

/// What one failover did.
struct Outcome {
    tally: Tally,
    acked: usize,
    lost: usize,
    recovered_after: Option<Duration>,
}

async fn failover(postgres: bool, synchronous: bool) -> Outcome {
    let what = format!(
        "{} with a{} replica",
        if postgres { "PostgreSQL" } else { "MariaDB" },
        if synchronous {
            " synchronous"
        } else {
            "n asynchronous"
        }
    );
    let mut pair = Pair::start(postgres).await;
    let (primary, replica) = pair.ports();
    let replication = Endpoint::start(primary).await;
    pair.replicate_through(&replication).await;
    if synchronous {
        pair.make_synchronous().await;
    }
    let endpoint = Endpoint::start(primary).await;
    let database_url = pair.url(&endpoint);
    let fleet = fleets::on_shared_redis(
        2,
        &[("CACHE", "none"), ("DATABASE_URL", database_url.as_str())],
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..BROWSERS {
        let c = ShopClient::new(fleet.url());
        c.signup(&format!("{}@example.com", unique("rds")), "a long password")
            .await;
        clients.push(c);
    }

    let fault_at = Instant::now() + Duration::from_millis(1500);
    let until = fault_at + Duration::from_secs(8);
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(buyer(c.clone(), i, until)))
        .collect();
    tokio::time::sleep_until(fault_at.into()).await;
    // The replica falls behind (a partition between the two), then the
    // primary is lost; the failover takes a moment to notice.
    replication.partition();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let crashed = Instant::now();
    pair.crash_primary();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pair.promote().await;
    endpoint.point_to(replica);
    let promoted = Instant::now();

    let mut tally = Tally::default();
    let mut probes = Vec::new();
    let mut acked = Vec::new();
    for t in tasks {
        let (p, ok) = t.await.expect("a buyer");
        p.iter().for_each(|p| tally.count(p));
        probes.extend(p);
        acked.extend(ok);
    }
    let on_new_primary = pair.orders_on_replica().await;
    let lost: Vec<&OrderKey> = acked
        .iter()
        .filter(|k| !on_new_primary.contains(k))
        .collect();
    let recovered_after = probes
        .iter()
        .filter(|p| p.sent >= promoted && p.status == Some(200))
        .map(|p| p.sent + p.took - crashed)
        .min();
    let failed_after = probes
        .iter()
        .filter(|p| p.status != Some(200) && p.sent + p.took >= crashed)
        .map(|p| p.sent + p.took - crashed)
        .max();
    say(&format!(
        "RDS failover, {what}: {} orders acknowledged, {} of them lost (such as {:?}); \
         requests {}; promoted {:?} after the crash; first 200 after the promotion \
         {recovered_after:?} after the crash; last failure ended {failed_after:?} after it",
        acked.len(),
        lost.len(),
        &lost[..lost.len().min(3)],
        tally.line(),
        promoted - crashed,
    ));
    let odd: Vec<String> = probes
        .iter()
        .filter(|p| !matches!(p.status, Some(200 | 503)))
        .take(3)
        .map(|p| format!("{} {}", p.label(), p.body))
        .collect();
    assert!(
        odd.is_empty(),
        "{what}: answers other than 200 and 503: {} (such as {odd:?})",
        tally.line()
    );
    assert!(
        probes
            .iter()
            .any(|p| p.sent >= promoted + Duration::from_secs(2) && p.status == Some(200)),
        "{what}: no order went through after the promotion"
    );
    Outcome {
        tally,
        acked: acked.len(),
        lost: lost.len(),
        recovered_after,
    }
}

/// Both replications on one database: prints what each lost, and fails if
/// the synchronous standby lost an acknowledged order.
async fn compare(postgres: bool) {
    let plain = failover(postgres, false).await;
    let standby = failover(postgres, true).await;
    say(&format!(
        "{} failover, {BROWSERS} browsers: asynchronous replica {} of {} acknowledged orders \
         lost ({} answered 503, recovered {:?} after the crash); synchronous standby {} of {} \
         lost ({} answered 503, recovered {:?} after the crash)",
        if postgres { "PostgreSQL" } else { "MariaDB" },
        plain.lost,
        plain.acked,
        plain.tally.of(503),
        plain.recovered_after,
        standby.lost,
        standby.acked,
        standby.tally.of(503),
        standby.recovered_after,
    ));
    assert_eq!(
        standby.lost, 0,
        "the synchronous standby lost acknowledged orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_primary_lost_and_replica_promoted_keeps_acknowledged_orders() {
    compare(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_primary_lost_and_replica_promoted_keeps_acknowledged_orders() {
    compare(false).await;
}
