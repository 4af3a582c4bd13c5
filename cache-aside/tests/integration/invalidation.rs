//! Invalidation: fleet-wide, and never undone by a fill that raced it.

use std::time::{Duration, Instant};

use cache_aside::CacheBuilder;

use crate::common::{Db, PATIENT, TestCache, builder, shared_client, unique, wait_subscribed};

/// Three instances of one cache: `a` and `b` with L1 and L2, `l2` with L2
/// only (it shows what Redis holds).
async fn fleet(name: &str, db: &Db) -> (TestCache, TestCache, TestCache) {
    let a = builder(name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    let b = builder(name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    let l2 = CacheBuilder::new(name)
        .with_ttl(Duration::from_secs(60))
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    (a, b, l2)
}

/// A load reads the old row, pauses until `invalidate` has returned, then
/// tries to store it. The old value must not be served afterwards: not from
/// this instance's L1, not from Redis, not from another instance.
async fn fill_racing_invalidation(invalidate_on_other_instance: bool) {
    let name = unique("race");
    let db = Db::with_rows([(5, "old")]);
    let (a, b, l2) = fleet(&name, &db).await;

    let mut paused = db.pause_next();
    let racing = tokio::spawn({
        let a = a.clone();
        async move { a.get(&5).await }
    });
    paused.started().await; // the load has read "old"

    db.set(5, "new");
    let invalidator = if invalidate_on_other_instance { &b } else { &a };
    invalidator.invalidate(&5).await.expect("invalidate");

    paused.release();
    // The racing read overlapped the invalidation: either answer is fine.
    let _ = racing.await.unwrap().expect("racing get");

    for round in 0..2 {
        // Round 0 fills the tiers with the fresh value, round 1 reads them.
        assert_eq!(
            a.get(&5).await.unwrap().as_deref(),
            Some("new"),
            "instance a, round {round}"
        );
        assert_eq!(
            b.get(&5).await.unwrap().as_deref(),
            Some("new"),
            "instance b, round {round}"
        );
        assert_eq!(
            l2.get(&5).await.unwrap().as_deref(),
            Some("new"),
            "redis, round {round}"
        );
    }
    assert!(
        a.stats().stale_fills >= 1,
        "the racing fill must have been refused: {:?}",
        a.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_racing_a_local_invalidation_is_dropped() {
    fill_racing_invalidation(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_racing_a_remote_invalidation_is_dropped() {
    fill_racing_invalidation(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_reaches_the_l1_of_other_instances() {
    let name = unique("propagation");
    let db = Db::with_rows([(9, "v1")]);
    let (a, b, _) = fleet(&name, &db).await;
    let c = builder(&name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    wait_subscribed(&c).await;

    for cache in [&a, &b, &c] {
        assert_eq!(cache.get(&9).await.unwrap().as_deref(), Some("v1"));
        // Now in every L1 (60 s TTL).
        assert_eq!(cache.get(&9).await.unwrap().as_deref(), Some("v1"));
    }

    db.set(9, "v2");
    a.invalidate(&9).await.unwrap();
    assert_eq!(a.get(&9).await.unwrap().as_deref(), Some("v2"));

    let started = Instant::now();
    for other in [&b, &c] {
        loop {
            if other.get(&9).await.unwrap().as_deref() == Some("v2") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "instance still serves the invalidated value after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(other.stats().invalidations_received >= 1);
    }
    // One instance reloaded, the others read what it stored.
    assert_eq!(db.loads(), 2);
}

/// Without Redis, the local generation guard alone keeps a racing fill out
/// of L1, and callers arriving after `invalidate` do not join the old load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_racing_invalidation_in_an_l1_only_cache() {
    let db = Db::with_rows([(5, "old")]);
    let cache = CacheBuilder::new(unique("race-l1"))
        .with_l1(10)
        .with_ttl(Duration::from_secs(60))
        .build(db.clone());

    let mut paused = db.pause_next();
    let racing = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&5).await }
    });
    paused.started().await;
    db.set(5, "new");
    cache.invalidate(&5).await.unwrap();

    // Arrives after the invalidation while the old load is still running.
    let late = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&5).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    paused.release();

    let _ = racing.await.unwrap().unwrap();
    assert_eq!(
        late.await.unwrap().unwrap().as_deref(),
        Some("new"),
        "late caller joined a stale load"
    );
    assert_eq!(
        cache.get(&5).await.unwrap().as_deref(),
        Some("new"),
        "stale value in L1"
    );
    assert_eq!(
        cache.stats().stale_fills,
        1,
        "the refused fill is counted: {:?}",
        cache.stats()
    );
}
