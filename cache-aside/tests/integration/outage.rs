//! Redis frozen, killed and restarted under a running cache.

use std::time::{Duration, Instant};

use cache_aside::{CacheBuilder, Error, FailMode};

use crate::common::{
    Db, RedisConfig, RedisServer, TestCache, bounded, builder, unique, wait_subscribed,
    wait_until_redis_serves,
};

const TIMEOUT: Duration = Duration::from_millis(150);
/// Generous bound for one call while Redis is unusable: one command timeout
/// plus scheduling slack on a busy 2-core machine.
const CALL_BOUND: Duration = Duration::from_millis(900);

fn outage_cache(server: &RedisServer, name: &str, db: &Db, mode: FailMode) -> TestCache {
    // L2 only, so that every read needs Redis.
    CacheBuilder::new(name)
        .with_ttl(Duration::from_secs(60))
        .with_redis(server.client())
        .with_redis_timeout(TIMEOUT)
        .with_connect_timeout(TIMEOUT)
        .with_retry_after(Duration::from_millis(200))
        .with_fail_mode(mode)
        .build(db.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_open_or_closed_and_recovers() {
    let mut server = RedisServer::start(RedisConfig::new()).await;
    let name = unique("outage");
    let db = Db::with_rows((1..=40).map(|k| (k, "row")));
    let open = outage_cache(&server, &name, &db, FailMode::Open);
    let closed_db = Db::with_rows([(1, "row")]);
    let closed = outage_cache(&server, &name, &closed_db, FailMode::Closed);

    // Healthy: filled once, then served by Redis, for both caches.
    assert_eq!(open.get(&1).await.unwrap().as_deref(), Some("row"));
    assert_eq!(closed.get(&1).await.unwrap().as_deref(), Some("row"));
    assert_eq!((db.loads(), closed_db.loads()), (1, 0));

    // Frozen: connections stay open and nothing answers. Every call is
    // bounded; fail-open answers from the loader, fail-closed errors out.
    server.pause();
    for key in 2..=6 {
        let (value, _) = bounded(
            CALL_BOUND,
            "a fail-open read of a frozen Redis",
            open.get(&key),
        )
        .await;
        assert_eq!(value.unwrap().as_deref(), Some("row"));
        let (err, _) = bounded(
            CALL_BOUND,
            "a fail-closed read of a frozen Redis",
            closed.get(&key),
        )
        .await;
        let err = err.expect_err("fail-closed must not answer without Redis");
        assert!(
            matches!(err, Error::Timeout { .. } | Error::Unavailable { .. }),
            "unexpected error: {err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(closed_db.loads(), 0, "fail-closed must not call the loader");
    server.resume();

    // Killed: connection refused.
    server.kill();
    for key in 7..=12 {
        let (value, _) = bounded(
            CALL_BOUND,
            "a fail-open read of a dead Redis",
            open.get(&key),
        )
        .await;
        assert_eq!(value.unwrap().as_deref(), Some("row"));
        let (err, _) = bounded(
            CALL_BOUND,
            "a fail-closed read of a dead Redis",
            closed.get(&key),
        )
        .await;
        let err = err.expect_err("fail-closed must not answer without Redis");
        assert!(
            matches!(
                err,
                Error::Redis { .. } | Error::Timeout { .. } | Error::Unavailable { .. }
            ),
            "unexpected error: {err:?}"
        );
    }
    let stats = open.stats();
    assert!(
        stats.fail_open >= 10 && stats.redis_errors >= 1,
        "{stats:?}"
    );
    assert_eq!(db.loads(), 12, "every fail-open read went to the loader");
    // Invalidation cannot be lost silently.
    let (err, _) = bounded(
        CALL_BOUND,
        "invalidate on a dead Redis",
        open.invalidate(&1),
    )
    .await;
    assert!(err.is_err());

    // Back on the same port: both caches use Redis again.
    server.restart().await;
    wait_until_redis_serves(&open, &db, 20).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed.get(&1).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "fail-closed cache did not recover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_is_flushed_when_the_subscription_reconnects() {
    let mut server = RedisServer::start(RedisConfig::new()).await;
    let name = unique("resubscribe");
    let db = Db::with_rows([(1, "before")]);
    let cache = builder(&name)
        .with_l1(100)
        .with_redis(server.client())
        .with_redis_timeout(TIMEOUT)
        .with_connect_timeout(TIMEOUT)
        .with_retry_after(Duration::from_millis(100))
        .build(db.clone());
    wait_subscribed(&cache).await;
    let flushes = cache.stats().l1_flushes;

    assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("before"));
    // While Redis is away an invalidation can be missed: the row changes and
    // nobody can tell this instance.
    server.kill();
    db.set(1, "after");
    assert_eq!(
        cache.get(&1).await.unwrap().as_deref(),
        Some("before"),
        "L1 still answers during the outage"
    );
    server.restart().await;

    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.stats().l1_flushes == flushes || !cache.is_subscribed() {
        assert!(
            Instant::now() < deadline,
            "subscription did not come back within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        cache.get(&1).await.unwrap().as_deref(),
        Some("after"),
        "L1 must be flushed when the subscription reconnects"
    );
}
