//! A Redis failover under the shop, with and without durable session
//! writes (`REDIS_WAIT_REPLICAS`): a private primary with one replica, two
//! shop processes behind HAProxy, and 50 browsers adding to their carts.
//! The primary is killed (SIGKILL) and the replica promoted: by the test
//! behind a relay playing ElastiCache's primary endpoint (the replica cut
//! off from the primary for 0.5 s before, so that it is behind), by three Redis
//! Sentinels the shops connect through, or, in a Redis Cluster of three
//! masters with a replica each (the shops on `REDIS_CLUSTER_URLS`), by the
//! cluster itself for the master that held a third of the carts. The
//! killed node then comes back as a replica of the new primary. One
//! scenario runs on each of these topologies.
//!
//! What must hold: every request answers `200` or `503`, the shops recover
//! by themselves, and with durable writes every add acknowledged with
//! `200` is in its cart afterwards. Without them the test reports how many
//! acknowledged adds were lost, and does not fail on it (Redis replicates
//! asynchronously; that is what the option is for).

use std::time::{Duration, Instant};

use e2e::client::ShopClient;
use e2e::faults::{self, Tally};
use e2e::shoppers::{Shoppers, sku};
use test_support::endpoint::Endpoint;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::redis::{
    RedisCluster, RedisConfig, RedisServer, info_field, node_info, replica_of, role,
    wait_replica_linked,
};
use test_support::redis_pair::RedisPair;
use test_support::sentinel::{MASTER_NAME, SentinelGroup};
use test_support::{say, wait_until};

const BROWSERS: usize = 50;

/// How the shops find the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `REDIS_URL` through a relay the test points at the new primary.
    Endpoint,
    /// `REDIS_SENTINEL_URLS`: the Sentinels promote and name the primary.
    Sentinel,
    /// `REDIS_CLUSTER_URLS`: a cluster of three masters with a replica
    /// each; the cluster promotes the dead master's replica itself.
    Cluster,
}

/// The running servers of one route.
enum Servers {
    /// The pair, the endpoint the shops use, and the relay the replica
    /// replicates through.
    Endpoint(RedisPair, Endpoint, Endpoint),
    Sentinel(SentinelGroup),
    Cluster(RedisCluster),
}

impl Servers {
    async fn start(route: Route) -> Servers {
        match route {
            Route::Endpoint => {
                let pair = RedisPair::start(RedisConfig::new()).await;
                let endpoint = Endpoint::start(pair.primary.port).await;
                let replication = Endpoint::start(pair.primary.port).await;
                replica_of(pair.replica.port, Some(replication.port)).await;
                wait_replica_linked(pair.replica.port, Duration::from_secs(20)).await;
                Servers::Endpoint(pair, endpoint, replication)
            }
            Route::Sentinel => Servers::Sentinel(SentinelGroup::start(RedisConfig::new()).await),
            Route::Cluster => Servers::Cluster(RedisCluster::start(3, 1, RedisConfig::new()).await),
        }
    }

    /// The shops' settings reaching these servers.
    fn env(&self) -> [(&'static str, String); 3] {
        let (mut url, mut sentinels, mut cluster) = (String::new(), String::new(), String::new());
        match self {
            Servers::Endpoint(_, endpoint, _) => url = endpoint.redis_url(),
            Servers::Sentinel(group) => sentinels = group.urls().join(","),
            Servers::Cluster(c) => cluster = c.urls().join(","),
        }
        [
            ("REDIS_URL", url),
            ("REDIS_SENTINEL_URLS", sentinels),
            ("REDIS_CLUSTER_URLS", cluster),
        ]
    }

    /// The node that is killed: the primary (for the cluster, the first
    /// master).
    fn victim(&mut self) -> &mut RedisServer {
        match self {
            Servers::Endpoint(pair, ..) => &mut pair.primary,
            Servers::Sentinel(group) => &mut group.pair.primary,
            Servers::Cluster(c) => &mut c.nodes[0],
        }
    }

    /// Behind the endpoint, cuts the replica off from the primary for
    /// 0.5 s, so that it falls behind: what the primary acknowledges
    /// meanwhile only the primary has. (Sentinel would repair a replica
    /// pointed at a relay, and a cluster's replicas find their masters
    /// themselves, so the other routes fail over with their replicas
    /// caught up.)
    async fn fall_behind(&self) {
        if let Servers::Endpoint(_, _, replication) = self {
            replication.partition();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Kills the primary (SIGKILL) and waits until a replica took over:
    /// the old and the new primary's ports.
    async fn kill_and_promote(&mut self) -> (u16, u16) {
        let old = self.victim().port;
        // The cluster's replica of the victim, asked before it dies.
        let replica = match self {
            Servers::Cluster(_) => {
                let info = node_info(old, "replication").await.unwrap_or_default();
                info_field(&info, "slave0")
                    .and_then(|s| s.split(',').find_map(|kv| kv.strip_prefix("port=")))
                    .and_then(|p| p.parse::<u16>().ok())
            }
            _ => None,
        };
        self.victim().kill();
        let new = match self {
            Servers::Sentinel(group) => group.wait_promoted(old, Duration::from_secs(30)).await,
            Servers::Endpoint(pair, endpoint, _) => {
                // Detection takes a moment on ElastiCache too.
                tokio::time::sleep(Duration::from_millis(500)).await;
                pair.promote_replica().await;
                endpoint.point_to(pair.replica.port);
                pair.replica.port
            }
            Servers::Cluster(_) => {
                let port = replica.expect("the cluster master has a replica");
                wait_until(
                    &format!("the cluster to promote :{port}"),
                    Duration::from_secs(30),
                    || async move { role(port).await.as_deref() == Some("master") },
                )
                .await;
                port
            }
        };
        (old, new)
    }

    /// The killed node returns (empty) as a replica of the new primary,
    /// so that durable writes can be confirmed again.
    async fn rejoin(&mut self, old: u16, new: u16) {
        self.victim().restart().await;
        // A cluster node learns its new role from the cluster itself.
        if !matches!(self, Servers::Cluster(_)) {
            replica_of(old, Some(new)).await;
        }
        wait_replica_linked(old, Duration::from_secs(20)).await;
    }
}

/// What one failover did to the browsers.
struct Outcome {
    tally: Tally,
    acked: usize,
    lost: usize,
    recovered_after: Option<Duration>,
}

async fn failover(route: Route, durable: bool) -> Outcome {
    let started = Instant::now();
    let wait = if durable { "1" } else { "0" };
    let mut servers = Servers::start(route).await;
    let mut env: Vec<(&str, &str)> = vec![
        ("SESSION_STORE", "redis"),
        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
        ("REDIS_WAIT_REPLICAS", wait),
        ("REDIS_WAIT_TIMEOUT_MS", "300"),
        ("SESSION_STORE_TIMEOUT_MS", "1500"),
        ("COOKIE_SECURE", "false"),
    ];
    let reach = servers.env();
    env.extend(reach.iter().map(|(k, v)| (*k, v.as_str())));
    let fleet = Fleet::start(2, &env, Balance::RoundRobin).await;
    let clients: Vec<ShopClient> = (0..BROWSERS)
        .map(|_| ShopClient::new(fleet.url()))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        let p = faults::add(c, &sku(i, 0)).await;
        assert_eq!(p.status, Some(200), "before the failover: {}", p.body);
    }
    let shoppers = Shoppers::start(
        clients.iter().map(|c| vec![c.clone()]).collect(),
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The fault, and the promotion.
    servers.fall_behind().await;
    let killed = Instant::now();
    let (old, new) = servers.kill_and_promote().await;
    let promoted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    servers.rejoin(old, new).await;
    let rejoined = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let run = shoppers.stop().await;

    let tally = run.tally();
    let what = format!("{route:?}, durable {durable}");
    assert!(
        tally.unexpected(&[200, 503]).is_empty(),
        "{what}: answers other than 200 and 503: {}",
        tally.line()
    );
    let recovered_after = run
        .first_ok_after(promoted)
        .map(|d| d + (promoted - killed));
    let lost = run.lost(&what).await;
    let acked = run.acked();
    let after_rejoin = run
        .probes()
        .filter(|p| p.sent >= rejoined + Duration::from_millis(500))
        .collect::<Vec<_>>();
    say(&format!(
        "redis failover ({what}): {acked} adds acknowledged, {lost} of them lost; \
         requests {}; promoted {:?} after the kill, first 200 after the promotion {:?} \
         after the kill; test took {:?}",
        tally.line(),
        promoted - killed,
        recovered_after,
        started.elapsed()
    ));
    assert!(
        after_rejoin.iter().any(|p| p.status == Some(200)),
        "{what}: no add succeeded once the old primary was back as a replica"
    );
    Outcome {
        tally,
        acked,
        lost,
        recovered_after,
    }
}

/// Both settings through `route`: prints what each lost, and fails if
/// the durable one lost anything.
async fn compare(route: Route) {
    let plain = failover(route, false).await;
    let durable = failover(route, true).await;
    say(&format!(
        "{route:?} failover, {BROWSERS} browsers: without WAIT {} of {} acknowledged adds lost \
         ({} answered 503, recovered {:?} after the kill); with WAIT 1: {} of {} lost \
         ({} answered 503, recovered {:?} after the kill)",
        plain.lost,
        plain.acked,
        plain.tally.of(503),
        plain.recovered_after,
        durable.lost,
        durable.acked,
        durable.tally.of(503),
        durable.recovered_after,
    ));
    assert_eq!(
        durable.lost, 0,
        "durable writes lost {} acknowledged adds",
        durable.lost
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_behind_its_endpoint_durable_writes_lose_nothing() {
    compare(Route::Endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_under_sentinel_durable_writes_lose_nothing() {
    compare(Route::Sentinel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_in_a_cluster_with_replicas_durable_writes_lose_nothing() {
    compare(Route::Cluster).await;
}
