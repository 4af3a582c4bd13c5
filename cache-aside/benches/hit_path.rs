//! Hit-path cost against the raw clients, measured in the same run.
//!
//! Run with: `cargo bench -p cache-aside --features full --bench hit_path`
//!
//! * `l1_hit` — `Cache::get` answered by L1, against `moka::future::Cache::get`
//!   on an equally configured moka cache;
//! * `l2_hit` — `Cache::get` answered by L2 (Redis, no L1), against a raw `GET`
//!   of the same key on the same connection type (`ConnectionManager`).
//!
//! The L2 benchmarks need Redis at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`) and stop with an error without it. After the
//! criterion groups, an interleaved timing loop prints the ratios, e.g.
//! `ratio l1_hit/raw_moka = 1.07`.
//!
//! On a busy machine wall-clock ratios wander; instruction counts do not:
//!
//! ```text
//! HIT_PATH_PROFILE=l1_hit:100000 valgrind --tool=callgrind <bench binary>
//! ```
//!
//! (see [`profile`]; subtract a run with 0 calls for the set-up cost).

#![allow(missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use cache_aside::{Cache, CacheBuilder, FnLoader, from_fn};
use criterion::Criterion;
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;

type Load = fn(u64) -> std::future::Ready<Result<Option<String>, std::io::Error>>;
type BenchCache = Cache<u64, String, FnLoader<Load>>;

const KEY: u64 = 42;
const CAPACITY: u64 = 10_000;
const TTL: Duration = Duration::from_secs(600);

fn loader() -> FnLoader<Load> {
    from_fn((|id| std::future::ready(Ok(Some(format!("product number {id}"))))) as Load)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

struct L1Pair {
    cache: BenchCache,
    raw: moka::future::Cache<u64, String>,
    /// moka with a per-entry expiry policy, as the cache's L1 uses.
    raw_expiry: moka::future::Cache<u64, String>,
}

struct FixedExpiry;

impl moka::Expiry<u64, String> for FixedExpiry {
    fn expire_after_create(&self, _: &u64, _: &String, _: Instant) -> Option<Duration> {
        Some(TTL)
    }
}

fn l1_pair(rt: &Runtime) -> L1Pair {
    let cache = CacheBuilder::new("bench-l1")
        .with_l1(CAPACITY)
        .with_ttl(TTL)
        .build(loader());
    let raw = moka::future::Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(TTL)
        .build();
    let raw_expiry = moka::future::Cache::builder()
        .max_capacity(CAPACITY)
        .expire_after(FixedExpiry)
        .build();
    rt.block_on(async {
        cache.get(&KEY).await.unwrap();
        raw.insert(KEY, format!("product number {KEY}")).await;
        raw_expiry
            .insert(KEY, format!("product number {KEY}"))
            .await;
        assert!(cache.get(&KEY).await.unwrap().is_some());
        assert_eq!(cache.stats().loads, 1);
    });
    L1Pair {
        cache,
        raw,
        raw_expiry,
    }
}

struct L2Pair {
    cache: BenchCache,
    conn: ConnectionManager,
    value_key: String,
}

fn l2_pair(rt: &Runtime) -> L2Pair {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
    let name = format!("bench-l2:{}", std::process::id());
    rt.block_on(async {
        let conn = tokio::time::timeout(
            Duration::from_secs(3),
            ConnectionManager::new(client.clone()),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("the L2 benchmarks need Redis at {url} (set REDIS_URL)"));
        let cache = CacheBuilder::new(&name)
            .with_redis(client)
            .with_ttl(TTL)
            .build(loader());
        cache.get(&KEY).await.unwrap();
        let value_key = format!("{name}:{{{KEY}}}:v");
        let mut probe = conn.clone();
        let stored: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&value_key)
            .query_async(&mut probe)
            .await
            .unwrap();
        assert!(stored.is_some(), "the cache did not store {value_key}");
        assert!(cache.get(&KEY).await.unwrap().is_some());
        assert_eq!(cache.stats().l2_hits, 1);
        L2Pair {
            cache,
            conn,
            value_key,
        }
    })
}

async fn raw_get(conn: &ConnectionManager, key: &str) -> Option<Vec<u8>> {
    let mut conn = conn.clone();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

fn bench_l1(c: &mut Criterion, rt: &Runtime, pair: &L1Pair) {
    let mut group = c.benchmark_group("l1");
    group.bench_function("l1_hit", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(pair.cache.get(black_box(&KEY)).await.unwrap()) })
    });
    group.bench_function("raw_moka_get", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(pair.raw.get(black_box(&KEY)).await) })
    });
    group.finish();
}

fn bench_l2(c: &mut Criterion, rt: &Runtime, pair: &L2Pair) {
    let mut group = c.benchmark_group("l2");
    group.bench_function("l2_hit", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(pair.cache.get(black_box(&KEY)).await.unwrap()) })
    });
    group.bench_function("raw_redis_get", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(raw_get(&pair.conn, &pair.value_key).await) })
    });
    group.finish();
}

/// Per-call times of `a` and `b`, in nanoseconds, measured in `pairs`
/// back-to-back chunks of `chunk` calls each, alternating which goes first.
/// Returns the fastest chunk of each and the median of the per-pair ratios
/// `a / b`; both resist other processes stealing the CPU now and then.
fn paired<A, B, FA, FB>(
    rt: &Runtime,
    pairs: usize,
    chunk: u32,
    mut a: A,
    mut b: B,
) -> (f64, f64, f64)
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future,
    FB: Future,
{
    let mut ratios = Vec::with_capacity(pairs);
    let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
    rt.block_on(async {
        for pair in 0..pairs {
            let mut time_a = 0.0;
            let mut time_b = 0.0;
            for turn in 0..2 {
                let started = Instant::now();
                if (pair + turn) % 2 == 0 {
                    for _ in 0..chunk {
                        black_box(a().await);
                    }
                    time_a = started.elapsed().as_nanos() as f64 / f64::from(chunk);
                } else {
                    for _ in 0..chunk {
                        black_box(b().await);
                    }
                    time_b = started.elapsed().as_nanos() as f64 / f64::from(chunk);
                }
            }
            best_a = best_a.min(time_a);
            best_b = best_b.min(time_b);
            ratios.push(time_a / time_b);
        }
    });
    ratios.sort_by(f64::total_cmp);
    (best_a, best_b, ratios[ratios.len() / 2])
}

/// `HIT_PATH_PROFILE=<op>:<n>` runs `n` calls of one L1 operation and exits,
/// for instruction counting under `valgrind --tool=callgrind`, which is
/// immune to other load on the machine. Ops: `l1_hit`, `raw_moka`,
/// `raw_moka_expiry`.
fn profile(rt: &Runtime, l1: &L1Pair, spec: &str) {
    let (op, n) = spec.split_once(':').expect("HIT_PATH_PROFILE=<op>:<n>");
    let n: u32 = n.parse().expect("call count");
    rt.block_on(async {
        for _ in 0..n {
            match op {
                "l1_hit" => drop(black_box(l1.cache.get(&KEY).await.unwrap())),
                "raw_moka" => drop(black_box(l1.raw.get(&KEY).await)),
                "raw_moka_expiry" => drop(black_box(l1.raw_expiry.get(&KEY).await)),
                other => panic!("unknown op {other}"),
            }
        }
    });
}

fn main() {
    let rt = runtime();
    let l1 = l1_pair(&rt);
    if let Ok(spec) = std::env::var("HIT_PATH_PROFILE") {
        profile(&rt, &l1, &spec);
        return;
    }
    let l2 = l2_pair(&rt);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    bench_l1(&mut c, &rt, &l1);
    bench_l2(&mut c, &rt, &l2);
    c.final_summary();

    let (ours, raw, median) = paired(
        &rt,
        1_000,
        1_000,
        || async { l1.cache.get(&KEY).await.unwrap() },
        || async { l1.raw.get(&KEY).await },
    );
    println!("timing l1_hit = {ours:.1} ns, raw_moka = {raw:.1} ns (fastest chunks)");
    println!(
        "ratio l1_hit/raw_moka = {:.2} (median of paired chunks {median:.2})",
        ours / raw
    );

    let (ours, raw, median) = paired(
        &rt,
        1_000,
        1_000,
        || async { l1.cache.get(&KEY).await.unwrap() },
        || async { l1.raw_expiry.get(&KEY).await },
    );
    println!("timing l1_hit = {ours:.1} ns, raw_moka_expiry = {raw:.1} ns (fastest chunks)");
    println!(
        "ratio l1_hit/raw_moka_expiry = {:.2} (median of paired chunks {median:.2})",
        ours / raw
    );

    let (ours, raw, median) = paired(
        &rt,
        200,
        50,
        || async { l2.cache.get(&KEY).await.unwrap() },
        || raw_get(&l2.conn, &l2.value_key),
    );
    println!(
        "timing l2_hit = {:.1} us, raw_redis_get = {:.1} us (fastest chunks)",
        ours / 1e3,
        raw / 1e3
    );
    println!(
        "ratio l2_hit/raw_redis_get = {:.2} (median of paired chunks {median:.2})",
        ours / raw
    );
}
