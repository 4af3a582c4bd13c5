//! A Redis Cluster master lost, with no replica to take over: a private
//! cluster of three masters without replicas (append-only files on), the
//! Redis store behind a `SessionLayer`, 30 sessions spread over the slots.
//!
//! One master is killed. Once the others have marked it failed:
//!
//! - with the default `cluster-require-full-coverage yes` the whole
//!   cluster refuses commands (`CLUSTERDOWN`), so every session answers
//!   `503`, not only those in the lost master's slots;
//! - with `cluster-require-full-coverage no` only the sessions in the lost
//!   master's slots answer `503`; the others keep working.
//!
//! When the master returns from its append-only file, every session works
//! again with its data. (The case with a replica, which is promoted and
//! keeps the sessions, is `cluster_failover_keeps_sessions` in
//! `session-stores/tests/redis.rs`.)

use std::time::{Duration, Instant};

use http::StatusCode;
use session_core::test_suite::TestApp;
use session_core::{Id, SessionLayer};
use session_stores::RedisStore;
use test_support::redis::{RedisCluster, RedisConfig, cluster_state};
use test_support::{say, wait_until};

const STORE_TIMEOUT: Duration = Duration::from_millis(500);

async fn conn(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to a cluster node")
}

/// Whether the node on `port` serves `key` (it answers `MOVED` for keys of
/// other nodes).
async fn owns(port: u16, key: &str) -> bool {
    let mut c = conn(port).await;
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut c)
        .await
        .is_ok()
}

/// Whether the node on `observer` has marked the node on `victim` failed.
async fn marked_failed(observer: u16, victim: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{observer}")) else {
        return false;
    };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let Ok(nodes) = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async::<String>(&mut c)
        .await
    else {
        return false;
    };
    nodes.lines().any(|l| {
        l.contains(&format!(":{victim}@"))
            && l.split(' ')
                .nth(2)
                .is_some_and(|flags| flags.split(',').any(|f| f == "fail"))
    })
}

struct Outcome {
    victim_503: usize,
    victim_total: usize,
    others_503: usize,
    others_total: usize,
    slowest: Duration,
    recovered_after: Duration,
}

async fn lose_a_master(extra: &[&str]) -> Outcome {
    let mut cluster =
        RedisCluster::start(3, 0, RedisConfig::new().with_persistence().with_args(extra)).await;
    let store = RedisStore::builder()
        .with_response_timeout(Duration::from_millis(300))
        .with_connection_timeout(Duration::from_millis(300))
        .connect_cluster(cluster.urls())
        .await
        .expect("private cluster");
    let layer = SessionLayer::new(store.clone()).with_store_timeout(STORE_TIMEOUT);
    let app = TestApp::new(layer, |s, _| async move {
        let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
        Ok(n.to_string())
    });
    let victim = cluster.nodes[0].port;
    let mut sessions = Vec::new();
    for _ in 0..30 {
        let res = app.send(None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let cookie = res.cookie.expect("a session cookie");
        let id = cookie
            .split_once('=')
            .and_then(|(_, v)| Id::parse(v))
            .expect("a session ID");
        let on_victim = owns(victim, &store.key(&id)).await;
        sessions.push((cookie, on_victim));
    }
    let victim_total = sessions.iter().filter(|(_, v)| *v).count();
    assert!(
        victim_total > 0 && victim_total < sessions.len(),
        "30 random sessions should spread over three masters ({victim_total} on the victim)"
    );

    cluster.nodes[0].kill();
    let observer = cluster.nodes[1].port;
    wait_until(
        "the other masters to mark the lost one failed",
        Duration::from_secs(15),
        || marked_failed(observer, victim),
    )
    .await;
    // Let the cluster state settle (it turns `fail` right after the mark
    // when full coverage is required).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = cluster_state(observer).await;
    say(&format!(
        "cluster {extra:?}: master :{victim} failed, cluster_state {state:?}"
    ));

    let mut outcome = Outcome {
        victim_503: 0,
        victim_total,
        others_503: 0,
        others_total: sessions.len() - victim_total,
        slowest: Duration::ZERO,
        recovered_after: Duration::ZERO,
    };
    for (cookie, on_victim) in &sessions {
        let sent = Instant::now();
        let res = app.send(Some(cookie)).await;
        outcome.slowest = outcome.slowest.max(sent.elapsed());
        assert!(
            matches!(res.status, StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE),
            "a session answered {} with a master down: {}",
            res.status,
            res.body
        );
        if res.status == StatusCode::OK {
            assert!(
                res.cookie.is_none() || res.cookie.as_deref() == Some(cookie),
                "a session was replaced by a new one"
            );
        }
        let unavailable = res.status == StatusCode::SERVICE_UNAVAILABLE;
        if *on_victim {
            outcome.victim_503 += usize::from(unavailable);
        } else {
            outcome.others_503 += usize::from(unavailable);
        }
    }

    // The master comes back from its append-only file.
    cluster.nodes[0].restart().await;
    let back = Instant::now();
    cluster.wait_ok(Duration::from_secs(20)).await;
    for (cookie, _) in &sessions {
        loop {
            let res = app.send(Some(cookie)).await;
            if res.status == StatusCode::OK {
                let n: u64 = res.body.parse().expect("a count");
                assert!(n >= 2, "a session lost its data: count {n}");
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(20),
                "a session still answers {} 20 s after the master returned",
                res.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    outcome.recovered_after = back.elapsed();
    outcome
}

fn report(mode: &str, o: &Outcome) {
    say(&format!(
        "cluster without replicas, {mode}: lost master's sessions {}/{} answered 503, \
         other sessions {}/{} answered 503, slowest {:?}; all 30 back with their data \
         {:?} after the master returned",
        o.victim_503, o.victim_total, o.others_503, o.others_total, o.slowest, o.recovered_after
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_master_without_replica_stops_the_whole_cluster_by_default() {
    let o = lose_a_master(&[]).await;
    report("cluster-require-full-coverage yes (default)", &o);
    assert_eq!(o.victim_503, o.victim_total);
    assert_eq!(
        o.others_503, o.others_total,
        "with full coverage required, the other masters refuse too"
    );
    assert!(o.slowest < Duration::from_millis(1500), "{:?}", o.slowest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_master_without_replica_stops_only_its_slots_without_full_coverage() {
    let o = lose_a_master(&["--cluster-require-full-coverage", "no"]).await;
    report("cluster-require-full-coverage no", &o);
    assert_eq!(o.victim_503, o.victim_total);
    assert_eq!(
        o.others_503, 0,
        "sessions on the surviving masters must keep working"
    );
    assert!(o.slowest < Duration::from_millis(1500), "{:?}", o.slowest);
}
