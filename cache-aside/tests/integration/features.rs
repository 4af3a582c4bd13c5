//! Negative caching, TTL and jitter, bulk reads, loader errors, early refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_aside::{CacheBuilder, Error};
use tokio::sync::Barrier;

use crate::common::{Db, PATIENT, builder, raw, shared_client, unique, wait_subscribed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_rows_are_cached_as_absent() {
    let name = unique("negative");
    let db = Db::new();
    let client = shared_client().await;
    let a = CacheBuilder::new(&name)
        .with_l1(100)
        .with_redis(client.clone())
        .with_redis_timeout(PATIENT)
        .with_negative_ttl(Duration::from_millis(300))
        .with_jitter(0.0)
        .build(db.clone());
    let b_db = Db::new();
    let b = CacheBuilder::new(&name)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(b_db.clone());

    assert_eq!(a.get(&404).await.unwrap(), None);
    assert_eq!(a.get(&404).await.unwrap(), None, "from L1");
    assert_eq!(b.get(&404).await.unwrap(), None, "from Redis");
    assert_eq!(
        (db.loads(), b_db.loads()),
        (1, 0),
        "one database lookup for a missing row"
    );
    assert_eq!(a.stats().negative_hits, 1);
    assert_eq!(b.stats().negative_hits, 1);

    // The negative entry has its own, short TTL in both tiers.
    let mut conn = raw(&client).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{name}:{{404}}:v"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 300, "negative entry PTTL {pttl}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    db.set(404, "created");
    assert_eq!(a.get(&404).await.unwrap().as_deref(), Some("created"));
    assert_eq!(db.loads(), 2);

    // Without negative caching every lookup reaches the database.
    let plain_db = Db::new();
    let plain = CacheBuilder::new(unique("no-negative"))
        .with_l1(100)
        .without_negative_caching()
        .build(plain_db.clone());
    for _ in 0..3 {
        assert_eq!(plain.get(&1).await.unwrap(), None);
    }
    assert_eq!(plain_db.loads(), 3);
}

async fn pttls(client: &redis::Client, name: &str, keys: impl Iterator<Item = u64>) -> Vec<i64> {
    let mut conn = raw(client).await;
    let mut out = Vec::new();
    for k in keys {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(format!("{name}:{{{k}}}:v"))
            .query_async(&mut conn)
            .await
            .unwrap();
        out.push(pttl);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_carry_jitter_and_per_entry_overrides() {
    let client = shared_client().await;
    let db = Db::with_rows((1..=40).map(|k| (k, "row")));
    let ttl = Duration::from_secs(10);

    let jittered_name = unique("jitter");
    let jittered = CacheBuilder::new(&jittered_name)
        .with_redis(client.clone())
        .with_redis_timeout(PATIENT)
        .with_ttl(ttl)
        .with_jitter(0.5)
        .with_entry_ttl(|k, _| (*k == 40).then(|| Duration::from_secs(1)))
        .build(db.clone());
    let even_name = unique("no-jitter");
    let even = CacheBuilder::new(&even_name)
        .with_redis(client.clone())
        .with_redis_timeout(PATIENT)
        .with_ttl(ttl)
        .with_jitter(0.0)
        .build(db.clone());
    for k in 1..=40 {
        jittered.get(&k).await.unwrap();
        even.get(&k).await.unwrap();
    }

    let spread = pttls(&client, &jittered_name, 1..=39).await;
    let (min, max) = (*spread.iter().min().unwrap(), *spread.iter().max().unwrap());
    // TTLs lie in [5 s, 10 s] when written; allow for time passing since.
    assert!(
        min >= 4_000 && max <= 10_000,
        "jittered TTLs out of range: {min}..{max}"
    );
    // 39 uniform draws over 5 s span ~4.7 s; without jitter they span the
    // few milliseconds the fills took.
    assert!(
        max - min >= 2_000,
        "jitter must spread expiries, got {min}..{max}"
    );
    let overridden = pttls(&client, &jittered_name, 40..=40).await[0];
    assert!(
        (400..=1_000).contains(&overridden),
        "per-entry TTL: {overridden}"
    );

    let flat = pttls(&client, &even_name, 1..=40).await;
    let (min, max) = (*flat.iter().min().unwrap(), *flat.iter().max().unwrap());
    assert!(
        max - min < 1_000 && min > 8_000,
        "without jitter: {min}..{max}"
    );

    // L1 entries expire too.
    let l1_db = Db::with_rows([(1, "row")]);
    let l1 = CacheBuilder::new(unique("l1-ttl"))
        .with_l1(10)
        .with_ttl(Duration::from_millis(150))
        .build(l1_db.clone());
    l1.get(&1).await.unwrap();
    l1.get(&1).await.unwrap();
    assert_eq!(l1_db.loads(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    l1.get(&1).await.unwrap();
    assert_eq!(l1_db.loads(), 2, "expired L1 entry must be reloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_loads_all_misses_in_one_call() {
    let name = unique("get-many");
    let db = Db::with_rows([(1, "one"), (2, "two"), (3, "three")]);
    let a = builder(&name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    let b_db = Db::new();
    let b = builder(&name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(b_db.clone());

    assert_eq!(a.get(&1).await.unwrap().as_deref(), Some("one"));
    let found = a.get_many([1, 2, 3, 404, 2]).await.unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(found[&2], "two");
    assert!(!found.contains_key(&404));
    assert_eq!(db.batches(), 1, "one loader call for all misses");
    let mut loaded = db.batch_keys()[0].clone();
    loaded.sort_unstable();
    assert_eq!(loaded, vec![2, 3, 404], "only the misses are loaded");
    assert_eq!(db.loads(), 1, "no per-key loads");

    // Everything is cached now, including the absent key.
    assert_eq!(a.get_many([1, 2, 3, 404]).await.unwrap().len(), 3);
    assert_eq!(db.batches(), 1);

    // Another instance reads all of it from Redis in one MGET.
    let from_redis = b.get_many([1, 2, 3, 404]).await.unwrap();
    assert_eq!(from_redis, found);
    assert_eq!((b_db.batches(), b_db.loads()), (0, 0));
    let stats = b.stats();
    assert_eq!((stats.l2_hits, stats.negative_hits), (4, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_errors_reach_every_waiter_and_are_not_cached() {
    let name = unique("errors");
    let db = Db::with_rows([(1, "one")]);
    db.fail_next(1);
    let a = builder(&name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    let b = builder(&name)
        .with_l1(100)
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .build(db.clone());
    wait_subscribed(&a).await;

    // The failing load is held until every other caller has joined it, so
    // that no caller can come late and start a load of its own.
    let callers = 50;
    let mut paused = db.pause_next();
    let barrier = Arc::new(Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (a, barrier) = (a.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                a.get(&1).await
            })
        })
        .collect();
    paused.started().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.stats().coalesced < callers as u64 - 1 {
        assert!(
            Instant::now() < deadline,
            "callers did not join the load: {:?}",
            a.stats()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    paused.release();

    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Err(Error::Load(e)) => errors.push(e),
            other => panic!("every waiter must see the loader error, got {other:?}"),
        }
    }
    assert_eq!(db.loads(), 1, "one failing load");
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "the same error is shared"
    );
    assert_eq!(errors[0].to_string(), "database unavailable");
    assert_eq!(a.stats().load_errors, 1);

    // Not cached anywhere: another instance loads, and then both hit.
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(db.loads(), 2);
    assert_eq!(a.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(db.loads(), 2);
}

/// A loader that returns how many times it ran.
fn versioned_db() -> (Db, impl Fn(&Db) -> usize) {
    let db = Db::with_rows([(1, "row")]);
    db.set_delay(Duration::from_millis(30));
    (db, |db: &Db| db.loads())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refresh_recomputes_before_expiry() {
    let (db, loads) = versioned_db();
    // XFetch with a large beta: a 30 ms load against a 2 s TTL is refreshed
    // on most reads.
    let eager = CacheBuilder::new(unique("xfetch"))
        .with_l1(10)
        .with_ttl(Duration::from_secs(2))
        .with_jitter(0.0)
        .with_early_refresh(1_000.0)
        .build(db.clone());
    for _ in 0..20 {
        assert_eq!(eager.get(&1).await.unwrap().as_deref(), Some("row"));
    }
    assert!(
        loads(&db) >= 3,
        "early refresh should have reloaded, loads = {}",
        loads(&db)
    );
    assert_eq!(eager.stats().early_refreshes as usize, loads(&db) - 1);

    // beta = 1: far from expiry, practically never.
    let (calm_db, loads) = versioned_db();
    let calm = CacheBuilder::new(unique("xfetch-calm"))
        .with_l1(10)
        .with_ttl(Duration::from_secs(2))
        .with_early_refresh(1.0)
        .build(calm_db.clone());
    for _ in 0..20 {
        calm.get(&1).await.unwrap();
    }
    assert_eq!(loads(&calm_db), 1);

    // Through Redis (no L1): the refresh takes the lease and rewrites L2.
    let (l2_db, loads) = versioned_db();
    let shared = CacheBuilder::new(unique("xfetch-l2"))
        .with_redis(shared_client().await)
        .with_redis_timeout(PATIENT)
        .with_ttl(Duration::from_secs(2))
        .with_jitter(0.0)
        .with_early_refresh(1_000.0)
        .build(l2_db.clone());
    for _ in 0..20 {
        assert_eq!(shared.get(&1).await.unwrap().as_deref(), Some("row"));
    }
    assert!(
        loads(&l2_db) >= 3,
        "early refresh through Redis, loads = {}",
        loads(&l2_db)
    );
}
