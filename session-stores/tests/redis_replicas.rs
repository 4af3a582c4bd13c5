//! The Redis store with replicas, against private servers of test-support:
//! writes confirmed by replicas (`with_wait_replicas`), an endpoint that
//! fails over (the ElastiCache primary endpoint, played by a relay), and
//! Redis Sentinel. Each test owns its servers; they need `redis-server`
//! (`scripts/services.sh up` installs it).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use session_core::store::{Data, Record, now};
use session_core::{Error, Id, SessionStore};
use session_stores::RedisStore;
use test_support::endpoint::Endpoint;
use test_support::redis::{RedisConfig, RedisServer, role};
use test_support::redis_pair::RedisPair;
use test_support::say;
use test_support::sentinel::{MASTER_NAME, SentinelGroup};

const WAIT: Duration = Duration::from_millis(300);

fn record(n: i64) -> Record {
    let data: Data = [("n".to_owned(), (&serde_json::json!(n)).into())]
        .into_iter()
        .collect();
    let now = now();
    Record::new(
        Id::random(),
        data,
        now,
        Some(now + Duration::from_secs(600)),
    )
}

/// The version of the session under `key` on `server`, read directly: the
/// stored string's first part.
async fn version_on(server: &RedisServer, key: &str) -> Option<String> {
    let mut c = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("GET");
    let stored = stored?;
    let version = stored.split(|&b| b == b':').next()?;
    Some(String::from_utf8_lossy(version).into_owned())
}

/// Creates `record`, then saves it with the next version.
async fn create_and_save(store: &RedisStore, record: &mut Record) -> session_core::Result<bool> {
    store.create(record).await?;
    let before = record.version;
    record.version += 1;
    store.save(record, before).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_writes_pass_the_conformance_suite() {
    let pair = RedisPair::start(RedisConfig::new()).await;
    let url = pair.primary.url();
    session_core::test_suite::run(|| async {
        RedisStore::builder()
            .with_wait_replicas(1, WAIT)
            .connect(&url)
            .await
            .expect("connect")
    })
    .await
    .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_are_on_the_replica_when_they_return() {
    let pair = RedisPair::start(RedisConfig::new()).await;
    let store = RedisStore::builder()
        .with_wait_replicas(1, Duration::from_secs(2))
        .connect(&pair.primary.url())
        .await
        .expect("connect");
    for n in 0..20 {
        let mut r = record(n);
        assert!(create_and_save(&store, &mut r).await.expect("durable save"));
        // Read on the replica at once: WAIT returned only after it had it.
        assert_eq!(
            version_on(&pair.replica, &store.key(&r.id))
                .await
                .as_deref(),
            Some("2"),
            "write {n} missing on the replica after it was acknowledged"
        );
        assert!(
            store
                .touch(&r.id, Some(now() + Duration::from_secs(900)))
                .await
                .expect("durable touch")
        );
        store.delete(&r.id).await.expect("durable delete");
        assert_eq!(version_on(&pair.replica, &store.key(&r.id)).await, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_errors_within_the_timeout_while_the_replica_is_paused() {
    let pair = RedisPair::start(RedisConfig::new()).await;
    let store = RedisStore::builder()
        .with_wait_replicas(1, WAIT)
        .connect(&pair.primary.url())
        .await
        .expect("connect");
    let mut r = record(1);
    store.create(&mut r).await.expect("create");

    pair.replica.pause();
    r.version += 1;
    let started = Instant::now();
    let outcome = store.save(&r, 1).await;
    let took = started.elapsed();
    pair.replica.resume();
    let err = outcome.expect_err("a save no replica confirmed must not succeed");
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err.to_string().contains("not known to be durable"),
        "unclear message: {err}"
    );
    assert!(
        took >= WAIT && took < WAIT + Duration::from_secs(2),
        "took {took:?} with a {WAIT:?} wait"
    );
    say(&format!(
        "paused replica: the save failed after {took:?}: {err}"
    ));

    // Once the replica is back, the same save is recognised as done (its
    // write token) or applied, and confirmed.
    let mut again = false;
    for _ in 0..20 {
        r.version = 3;
        if store.save(&r, 2).await.is_ok() || store.save(&r, 1).await.is_ok() {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again, "saves did not work again after the replica resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_a_save_succeeds_while_the_replica_is_paused() {
    let pair = RedisPair::start(RedisConfig::new()).await;
    let store = RedisStore::connect(&pair.primary.url())
        .await
        .expect("connect");
    pair.replica.pause();
    let mut r = record(1);
    let saved = create_and_save(&store, &mut r).await;
    pair.replica.resume();
    assert!(saved.expect("a plain save does not wait for replicas"));
}

/// Load, change and save the session `id` once: the status a request
/// doing so would answer.
async fn one_change(store: &RedisStore, id: &Id) -> StatusCode {
    let result = async {
        let mut r = store.load(id).await?.expect("the session exists");
        let before = r.version;
        r.version += 1;
        store.save(&r, before).await
    }
    .await;
    match result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    }
}

/// Statuses of `workers` loops of [`one_change`] on their own sessions
/// until `stop`, each with the time it was sent.
async fn traffic(
    store: &RedisStore,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, StatusCode)>>> {
    let mut tasks = Vec::new();
    for n in 0..workers {
        let mut r = record(n as i64);
        store.create(&mut r).await.expect("create before the fault");
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push((Instant::now(), one_change(&store, &r.id).await));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        }));
    }
    tasks
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Vec<(Instant, StatusCode)>>>,
) -> Vec<(Instant, StatusCode)> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    all.sort_by_key(|(at, _)| *at);
    all
}

fn count(all: &[(Instant, StatusCode)], status: StatusCode) -> usize {
    all.iter().filter(|(_, s)| *s == status).count()
}

/// Fails unless every answer was `200` or `503`, and every one from
/// `settled` on `200` (with at least one).
fn assert_recovered(what: &str, all: &[(Instant, StatusCode)], settled: Instant) {
    let others: Vec<StatusCode> = all
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s != StatusCode::OK && *s != StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        others.is_empty(),
        "{what}: answers other than 200 and 503: {others:?}"
    );
    let late: Vec<_> = all
        .iter()
        .filter(|(at, s)| *at >= settled && *s != StatusCode::OK)
        .collect();
    assert!(late.is_empty(), "{what}: still failing: {late:?}");
    assert!(
        all.iter().any(|(at, _)| *at >= settled),
        "{what}: no change tried after recovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_behind_its_endpoint_is_followed_without_a_restart() {
    let pair = RedisPair::start(RedisConfig::new()).await;
    let endpoint = Endpoint::start(pair.primary.port).await;
    let store = RedisStore::connect(&endpoint.redis_url())
        .await
        .expect("connect through the endpoint");
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = traffic(&store, 8, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The failover: the replica is promoted, the old primary demoted, and
    // a moment later the endpoint names the new primary.
    let switched = Instant::now();
    pair.swap_roles().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    endpoint.point_to(pair.replica.port);
    let pointed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let all = collect(tasks).await;

    let during = all.iter().filter(|(at, _)| *at >= switched).count();
    let unavailable = count(&all, StatusCode::SERVICE_UNAVAILABLE);
    // Recovery by itself: from shortly after the endpoint moved, all work.
    assert_recovered("endpoint", &all, pointed + Duration::from_millis(500));
    let last_503 = all
        .iter()
        .rfind(|(_, s)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .map(|(at, _)| at.duration_since(switched));
    say(&format!(
        "endpoint failover: {} changes, {during} after the switch, {unavailable} answered 503, \
         the last {last_503:?} after the switch (the endpoint moved after 300 ms)",
        all.len()
    ));
    assert_eq!(
        role(pair.replica.port).await.as_deref(),
        Some("master"),
        "the test's failover did not happen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_demoted_node_fails_cleanly_until_the_endpoint_moves() {
    let pair = RedisPair::start(RedisConfig::new()).await;
    let endpoint = Endpoint::start(pair.primary.port).await;
    let store = RedisStore::connect(&endpoint.redis_url())
        .await
        .expect("connect");
    let mut r = record(1);
    store.create(&mut r).await.expect("create");
    pair.swap_roles().await;
    r.version = 2;
    let err = store
        .save(&r, 1)
        .await
        .expect_err("no primary behind the endpoint yet");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
    endpoint.point_to(pair.replica.port);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(store.save(&r, 1).await.expect("saved on the new primary"));
    assert_eq!(
        store.load(&r.id).await.expect("load").map(|r| r.version),
        Some(2)
    );
}

async fn sentinel_failover(kill: bool) {
    let mut group = SentinelGroup::start(RedisConfig::new()).await;
    let store = RedisStore::builder()
        .connect_sentinel(group.urls(), MASTER_NAME)
        .await
        .expect("connect through Sentinel");
    let mut kept = record(0);
    store.create(&mut kept).await.expect("create");
    // Replicated before the failover, so it must survive it.
    test_support::redis::wait_replica_linked(group.pair.replica.port, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = traffic(&store, 6, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let old = group.pair.primary.port;
    let failed = Instant::now();
    if kill {
        group.pair.primary.kill();
    } else {
        group.failover().await;
    }
    let new = group.wait_promoted(old, Duration::from_secs(30)).await;
    let promoted = Instant::now();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    let all = collect(tasks).await;

    let recovered = all
        .iter()
        .find(|(at, s)| *at >= promoted && *s == StatusCode::OK)
        .map(|(at, _)| at.duration_since(failed))
        .expect("no change succeeded after the promotion");
    assert_recovered("sentinel", &all, promoted + Duration::from_millis(1000));
    say(&format!(
        "sentinel {}: {} changes, {} answered 503; promoted :{new} after {:?}, \
         the store wrote again {recovered:?} after the fault",
        if kill {
            "primary killed"
        } else {
            "SENTINEL FAILOVER"
        },
        all.len(),
        count(&all, StatusCode::SERVICE_UNAVAILABLE),
        promoted.duration_since(failed),
    ));
    assert_eq!(
        store.load(&kept.id).await.expect("load").map(|r| r.version),
        Some(1),
        "a session written before the failover is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_after_the_primary_is_killed_is_followed() {
    sentinel_failover(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_on_request_is_followed() {
    sentinel_failover(false).await;
}
