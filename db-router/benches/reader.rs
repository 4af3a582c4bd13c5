//! `DbRouter::reader()` against a raw `pool.acquire()` on the same SQLite
//! in-memory pool, in the same run.
//!
//! Run with: `cargo bench -p db-router --features sqlite --bench reader`
//!
//! After criterion's report, prints the per-acquire times measured in one
//! interleaved loop, their ratio, and the absolute difference.

#![allow(clippy::print_stdout)] // printing the comparison is the point

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use db_router::DbRouter;
use sqlx::Sqlite;
use sqlx::sqlite::SqlitePoolOptions;
use tokio::runtime::Runtime;

fn setup() -> (Runtime, DbRouter<Sqlite>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let router = runtime.block_on(async {
        // No ping before each acquire: what is left is the pool's own
        // bookkeeping, against which the router's overhead shows.
        let primary = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let router = DbRouter::builder(primary).build().await.unwrap();
        // Open the read pool's first connection outside the measurement.
        drop(router.reader().await.unwrap());
        router
    });
    (runtime, router)
}

fn criterion_benches(c: &mut Criterion, runtime: &Runtime, router: &DbRouter<Sqlite>) {
    let pool = router.primary_read_pool().clone();
    let mut group = c.benchmark_group("sqlite_in_memory_acquire");
    group.bench_function("raw pool.acquire()", |b| {
        b.to_async(runtime)
            .iter(|| async { drop(black_box(pool.acquire().await.unwrap())) })
    });
    group.bench_function("router.reader()", |b| {
        b.to_async(runtime)
            .iter(|| async { drop(black_box(router.reader().await.unwrap())) })
    });
    group.bench_function("router.read_pool(None) (routing decision only)", |b| {
        b.to_async(runtime).iter(|| async {
            black_box(router.read_pool(None).await.unwrap());
        })
    });
    group.finish();
}

/// Mean time per acquire over `n` iterations of each, alternating in
/// rounds so both see the same machine state; the median round wins.
fn interleaved(runtime: &Runtime, router: &DbRouter<Sqlite>) -> (Duration, Duration) {
    const ROUNDS: usize = 15;
    const N: u32 = 20_000;
    let pool = router.primary_read_pool().clone();
    let mut raw = Vec::with_capacity(ROUNDS);
    let mut routed = Vec::with_capacity(ROUNDS);
    runtime.block_on(async {
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..N {
                drop(black_box(pool.acquire().await.unwrap()));
            }
            raw.push(start.elapsed() / N);
            let start = Instant::now();
            for _ in 0..N {
                drop(black_box(router.reader().await.unwrap()));
            }
            routed.push(start.elapsed() / N);
        }
    });
    raw.sort();
    routed.sort();
    (raw[ROUNDS / 2], routed[ROUNDS / 2])
}

fn main() {
    let (runtime, router) = setup();
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &runtime, &router);
    criterion.final_summary();

    let (raw, routed) = interleaved(&runtime, &router);
    let diff_ns = routed.as_nanos() as f64 - raw.as_nanos() as f64;
    println!();
    println!(
        "raw pool.acquire():   {:>8.0} ns/acquire",
        raw.as_nanos() as f64
    );
    println!(
        "router.reader():      {:>8.0} ns/acquire",
        routed.as_nanos() as f64
    );
    println!(
        "ratio reader/raw:     {:>8.3}",
        routed.as_nanos() as f64 / raw.as_nanos() as f64
    );
    println!(
        "difference:           {diff_ns:>8.0} ns/acquire (goal: <= 2000 ns) {}",
        if diff_ns <= 2000.0 { "OK" } else { "OVER GOAL" }
    );
}
