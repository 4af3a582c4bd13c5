//! L2 through Redis Sentinel: the shared group of `scripts/services.sh`
//! for plain use, and a private group (test-support's `SentinelGroup`)
//! whose master is killed, then switched back by a planned failover,
//! under a running cache.

use std::time::Duration;

use cache_aside::{CacheBuilder, FailMode};
use test_support::redis::{role, wait_replica_linked};
use test_support::sentinel::{MASTER_NAME, SentinelGroup, shared_master, shared_urls};
use test_support::{say, wait_until};

use crate::common::{
    Db, PATIENT, RedisConfig, TestCache, unique, wait_subscribed, wait_until_redis_serves,
};

/// L2 only, so that every read needs Redis, failing open.
fn sentinel_cache(urls: &[String], master: &str, name: &str, db: &Db) -> TestCache {
    CacheBuilder::new(name)
        .with_ttl(Duration::from_secs(60))
        .with_redis_sentinel(urls, master)
        .expect("Sentinel URLs")
        .with_redis_timeout(Duration::from_millis(300))
        .with_connect_timeout(Duration::from_millis(500))
        .with_retry_after(Duration::from_millis(200))
        .with_fail_mode(FailMode::Open)
        .build(db.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_through_the_shared_sentinel_group() {
    let urls = shared_urls();
    let name = unique("sentinel-shared");
    let db = Db::with_rows([(1, "row")]);
    let cache = CacheBuilder::new(&name)
        .with_ttl(Duration::from_secs(60))
        .with_redis_sentinel(&urls, &shared_master())
        .expect("Sentinel URLs")
        .with_redis_timeout(PATIENT)
        .with_connect_timeout(PATIENT)
        .with_fail_mode(FailMode::Closed)
        .build(db.clone());
    let first = cache.get(&1).await.unwrap_or_else(|e| {
        panic!(
            "no Redis master through the shared Sentinels {urls:?}: {e}; {}",
            test_support::START_HINT
        )
    });
    assert_eq!(first.as_deref(), Some("row"));
    assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("row"));
    assert_eq!(db.loads(), 1, "the second read is an L2 hit");
    assert_eq!(cache.stats().l2_hits, 1);
    wait_subscribed(&cache).await;
    cache.invalidate(&1).await.unwrap();
}

/// Reads keys `keys` once each; every read must answer (failing open).
async fn read_all(cache: &TestCache, keys: std::ops::RangeInclusive<u64>) {
    for key in keys {
        let value = cache.get(&key).await;
        assert!(
            matches!(value, Ok(Some(_))),
            "a read during the switch failed instead of failing open: {value:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_follows_the_master_sentinel_promotes() {
    let mut group = SentinelGroup::start(RedisConfig::new()).await;
    let name = unique("sentinel-failover");
    let db = Db::with_rows((1..=200).map(|k| (k, "row")));
    let cache = sentinel_cache(&group.urls(), MASTER_NAME, &name, &db);
    wait_until_redis_serves(&cache, &db, 1).await;
    wait_subscribed(&cache).await;

    // The master dies; Sentinel promotes the replica. Reads keep answering
    // from the loader meanwhile, and then use the new master.
    let old = group.pair.primary.port;
    group.pair.primary.kill();
    let errors_before = cache.stats().redis_errors;
    read_all(&cache, 2..=20).await;
    let new = group.wait_promoted(old, Duration::from_secs(30)).await;
    read_all(&cache, 21..=40).await;
    wait_until_redis_serves(&cache, &db, 41).await;
    wait_subscribed(&cache).await;
    let killed_errors = cache.stats().redis_errors - errors_before;

    // The old master returns as a replica; a planned failover makes it the
    // master again, so the cache's master is demoted under it (`READONLY`
    // on its fills).
    group.pair.primary.restart().await;
    wait_replica_linked(old, Duration::from_secs(20)).await;
    let errors_before = cache.stats().redis_errors;
    group.failover().await;
    assert_eq!(group.wait_promoted(new, Duration::from_secs(30)).await, old);
    // Once Sentinel has made the cache's master a replica, the cache's
    // fills there answer READONLY, which sends it to the new master.
    wait_until(
        "the demoted master to become a replica",
        Duration::from_secs(30),
        || async move { role(new).await.as_deref() == Some("slave") },
    )
    .await;
    read_all(&cache, 42..=60).await;
    wait_until_redis_serves(&cache, &db, 61).await;
    wait_subscribed(&cache).await;
    let demoted_errors = cache.stats().redis_errors - errors_before;
    let server = format!("{cache:?}");
    assert!(
        server.contains(&format!(":{old}")),
        "the cache does not use the new master :{old}: {server}"
    );
    say(&format!(
        "cache-aside through Sentinel: {killed_errors} Redis errors while the master was \
         killed and replaced, {demoted_errors} during the planned failover; every read answered"
    ));

    // Invalidation reaches the new master and its subscribers.
    cache.invalidate(&61).await.unwrap();
    let loads = db.loads();
    assert_eq!(cache.get(&61).await.unwrap().as_deref(), Some("row"));
    assert_eq!(
        db.loads(),
        loads + 1,
        "the invalidated key was loaded again"
    );
}
