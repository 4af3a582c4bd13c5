//! Single flight, in one process and across instances.

use std::time::{Duration, Instant};

use cache_aside::CacheBuilder;
use test_support::burst::burst;

use crate::common::{Db, PATIENT, TestCache, builder, shared_client, unique, wait_subscribed};

const CALLERS: usize = 1_000;

/// Releases `CALLERS` tasks at once, spread over `caches`, all reading
/// `key`; returns their results.
async fn stampede(caches: &[TestCache], key: u64) -> Vec<Option<String>> {
    let (results, _) = burst(CALLERS, |i| {
        let cache = caches[i % caches.len()].clone();
        async move { cache.get(&key).await }
    })
    .await;
    results.into_iter().map(|r| r.expect("get")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_runs_the_loader_once() {
    let db = Db::with_rows([(1, "one")]);
    db.set_delay(Duration::from_millis(50));
    let cache = CacheBuilder::new(unique("local-stampede"))
        .with_l1(100)
        .build(db.clone());

    let results = stampede(std::slice::from_ref(&cache), 1).await;

    assert!(results.iter().all(|r| r.as_deref() == Some("one")));
    assert_eq!(db.loads(), 1, "concurrent misses must share one load");
    let stats = cache.stats();
    assert_eq!(stats.loads, 1);
    assert!(stats.coalesced > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_run_the_loader_once() {
    let name = unique("fleet-stampede");
    let db = Db::with_rows([(7, "seven")]);
    db.set_delay(Duration::from_millis(100));
    // Three instances, each with its own client and connections, as three
    // processes would have.
    let mut caches = Vec::new();
    for _ in 0..3 {
        let client = shared_client().await;
        caches.push(
            builder(&name)
                .with_l1(100)
                .with_redis(client)
                .with_redis_timeout(PATIENT)
                .build(db.clone()),
        );
    }
    for cache in &caches {
        // Subscribing flushes L1 and detaches running loads; get it done first.
        wait_subscribed(cache).await;
    }

    let results = stampede(&caches, 7).await;

    assert!(results.iter().all(|r| r.as_deref() == Some("seven")));
    assert_eq!(
        db.loads(),
        1,
        "a burst of misses on 3 instances must load once"
    );
    let waits: u64 = caches.iter().map(|c| c.stats().lease_waits).sum();
    assert_eq!(
        waits, 2,
        "the two other instances wait for the lease holder"
    );
}

/// A holder that crashed leaves its lease behind; it expires and the next
/// miss loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lease_expires() {
    let client = shared_client().await;
    let name = unique("crashed-lease");
    let db = Db::with_rows([(3, "three")]);
    let cache = builder(&name)
        .with_redis(client.clone())
        .with_redis_timeout(PATIENT)
        .build(db.clone());

    let mut conn = crate::common::raw(&client).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{name}:{{3}}:l"))
        .arg("token-of-a-dead-instance")
        .arg("PX")
        .arg(300)
        .query_async(&mut conn)
        .await
        .unwrap();

    let started = Instant::now();
    assert_eq!(cache.get(&3).await.unwrap().as_deref(), Some("three"));
    let took = started.elapsed();

    assert_eq!(db.loads(), 1);
    assert_eq!(cache.stats().lease_waits, 1);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "the miss should wait for the lease to expire (~300 ms), took {took:?}"
    );
}

/// Followers of a cancelled leader are not stranded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_over() {
    let db = Db::with_rows([(1, "one")]);
    let cache = CacheBuilder::new(unique("cancel"))
        .with_l1(10)
        .build(db.clone());
    let mut paused = db.pause_next();
    let leader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&1).await }
    });
    paused.started().await;
    let follower = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&1).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    let value = tokio::time::timeout(Duration::from_secs(2), follower)
        .await
        .expect("follower stranded")
        .unwrap()
        .unwrap();
    assert_eq!(value.as_deref(), Some("one"));
    assert_eq!(db.loads(), 2);
    drop(paused);
}

/// L2 only: no in-process tier, every read goes to Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_only_cache() {
    let db = Db::with_rows([(1, "one")]);
    let cache = CacheBuilder::new(unique("l2-only"))
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("one"));
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.l2_misses, stats.l2_hits), (1, 1, 1));
    assert_eq!((stats.l1_hits, stats.l1_misses), (0, 0));
}
