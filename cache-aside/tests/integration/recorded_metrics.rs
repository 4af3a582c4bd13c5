//! The `metrics` feature: every counter of `CacheStats` reaches the
//! recorder under its documented name, labelled by cache (and tier), and
//! moves when the stats do, through a miss, a hit, and a fill that lost
//! to an invalidation.

use cache_aside::CacheStats;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::common::{Db, PATIENT, TestCache, builder, shared_client, unique, wait_subscribed};

/// The sample of `name` whose labels include every `k="v"` of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("unreadable sample {l:?}")) as u64
        })
        .sum()
}

/// Checks that the scrape matches `stats` for the cache `name`, field by
/// field.
fn assert_matches(handle: &PrometheusHandle, name: &str, stats: &CacheStats) {
    let text = handle.render();
    let cache = format!("cache=\"{name}\"");
    let get = |metric: &str, more: &[&str]| {
        let mut labels = vec![cache.as_str()];
        labels.extend_from_slice(more);
        sample(&text, metric, &labels)
    };
    let expected = [
        (
            "l1 hits",
            get("cache_hits_total", &["tier=\"l1\""]),
            stats.l1_hits,
        ),
        (
            "l1 misses",
            get("cache_misses_total", &["tier=\"l1\""]),
            stats.l1_misses,
        ),
        (
            "l2 hits",
            get("cache_hits_total", &["tier=\"l2\""]),
            stats.l2_hits,
        ),
        (
            "l2 misses",
            get("cache_misses_total", &["tier=\"l2\""]),
            stats.l2_misses,
        ),
        (
            "negative hits",
            get("cache_negative_hits_total", &[]),
            stats.negative_hits,
        ),
        ("loads", get("cache_loads_total", &[]), stats.loads),
        (
            "load latency",
            get("cache_load_duration_seconds_count", &[]),
            stats.loads,
        ),
        (
            "load errors",
            get("cache_load_errors_total", &[]),
            stats.load_errors,
        ),
        (
            "coalesced",
            get("cache_coalesced_waits_total", &["scope=\"process\""]),
            stats.coalesced,
        ),
        (
            "lease waits",
            get("cache_coalesced_waits_total", &["scope=\"fleet\""]),
            stats.lease_waits,
        ),
        (
            "redis errors",
            get("cache_l2_errors_total", &[]),
            stats.redis_errors,
        ),
        (
            "fail open",
            get("cache_fail_open_bypasses_total", &[]),
            stats.fail_open,
        ),
        (
            "stale fills",
            get("cache_fills_discarded_total", &[]),
            stats.stale_fills,
        ),
        (
            "early refreshes",
            get("cache_early_refreshes_total", &[]),
            stats.early_refreshes,
        ),
        (
            "invalidations sent",
            get("cache_invalidations_sent_total", &[]),
            stats.invalidations_sent,
        ),
        (
            "invalidations received",
            get("cache_invalidations_received_total", &[]),
            stats.invalidations_received,
        ),
        (
            "l1 flushes",
            get("cache_l1_flushes_total", &[]),
            stats.l1_flushes,
        ),
        (
            "decode errors",
            get("cache_decode_errors_total", &[]),
            stats.decode_errors,
        ),
    ];
    for (what, metric, stat) in expected {
        assert_eq!(metric, stat, "{what} of {name}: metric vs stats\n{text}");
    }
}

/// An instance with L1 and L2 whose metrics go to `recorder`.
async fn instance(recorder: &PrometheusRecorder, name: &str, db: &Db) -> TestCache {
    let client = shared_client().await;
    let cache = metrics::with_local_recorder(recorder, || {
        builder(name)
            .with_l1(100)
            .with_redis(client)
            .with_redis_timeout(PATIENT)
            .build(db.clone())
    });
    wait_subscribed(&cache).await;
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_stats_through_a_miss_a_hit_and_a_lost_fill() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let name_a = unique("metrics");
    let db = Db::with_rows([(1, "one"), (5, "old")]);
    // Two caches of one name would share their series; two instances of
    // the same cache are told apart by giving each its own recorder.
    let a = instance(&recorder, &name_a, &db).await;
    let other = PrometheusBuilder::new().build_recorder();
    let b = instance(&other, &name_a, &db).await;

    // A miss in both tiers, a load, then an L1 hit.
    assert_eq!(a.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(a.get(&1).await.unwrap().as_deref(), Some("one"));
    let text = handle.render();
    let cache = format!("cache=\"{name_a}\"");
    assert_eq!(
        sample(&text, "cache_misses_total", &[&cache, "tier=\"l1\""]),
        1
    );
    assert_eq!(
        sample(&text, "cache_misses_total", &[&cache, "tier=\"l2\""]),
        1
    );
    assert_eq!(sample(&text, "cache_loads_total", &[&cache]), 1);
    assert_eq!(
        sample(&text, "cache_hits_total", &[&cache, "tier=\"l1\""]),
        1
    );
    assert_matches(&handle, &name_a, &a.stats());

    // A fill racing an invalidation from the other instance is discarded.
    let mut paused = db.pause_next();
    let racing = tokio::spawn({
        let a = a.clone();
        async move { a.get(&5).await }
    });
    paused.started().await;
    db.set(5, "new");
    b.invalidate(&5).await.expect("invalidate");
    paused.release();
    let _ = racing.await.unwrap().expect("racing get");
    assert_eq!(a.get(&5).await.unwrap().as_deref(), Some("new"));

    let text = handle.render();
    assert!(
        sample(&text, "cache_fills_discarded_total", &[&cache]) >= 1,
        "the lost fill is counted\n{text}"
    );
    assert_eq!(
        sample(
            &other.handle().render(),
            "cache_invalidations_sent_total",
            &[&cache]
        ),
        1
    );
    assert_matches(&handle, &name_a, &a.stats());
    assert_matches(&other.handle(), &name_a, &b.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refreshes_are_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let name = unique("metrics-xfetch");
    let db = Db::with_rows([(1, "row")]);
    // A 30 ms load against a 2 s TTL with a large beta: most hits refresh.
    db.set_delay(std::time::Duration::from_millis(30));
    let cache = metrics::with_local_recorder(&recorder, || {
        cache_aside::CacheBuilder::new(name.clone())
            .with_l1(10)
            .with_ttl(std::time::Duration::from_secs(2))
            .with_jitter(0.0)
            .with_early_refresh(1_000.0)
            .build(db.clone())
    });
    for _ in 0..20 {
        assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("row"));
    }
    let cache_label = format!("cache=\"{name}\"");
    let refreshes = sample(
        &handle.render(),
        "cache_early_refreshes_total",
        &[&cache_label],
    );
    // Every load but the first miss's was an early refresh.
    assert_eq!(refreshes as usize, db.loads() - 1);
    assert!(refreshes > 0, "no early refresh in 20 hits");
    assert_matches(&handle, &name, &cache.stats());
}
