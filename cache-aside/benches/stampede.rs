//! The fleet stampede: 1,000 concurrent misses of one key spread over 3
//! cache instances sharing one Redis L2, against one load's own time.
//!
//! Run with: `cargo bench -p cache-aside --features full --bench stampede`
//!
//! The three instances live in this one process, each with its own Redis
//! client and connections, subscriptions and L1, as three processes would
//! have them: the fleet-wide coalescing (the L2 lease) is what they share,
//! the in-process single flight only coalesces callers of the same
//! instance. Each trial reads a key no trial read before, released on one
//! barrier. The loader stands for a database query of `STAMPEDE_LOAD_MS`
//! milliseconds (default 50). Prints, for the median trial:
//!
//! ```text
//! stampede loads per trial = 1 (max over 5 trials; goal: exactly 1)
//! timing stampede time_to_all = 61.2 ms, one_load = 50.1 ms (median of 5 trials)
//! ratio stampede time_to_all/one_load = 1.22
//! ```
//!
//! Needs Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`) and stops
//! with an error without it.

#![allow(missing_docs, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_aside::{Cache, CacheBuilder, Loader};
use test_support::burst::burst;

const CALLERS: usize = 1_000;
const INSTANCES: usize = 3;
const TRIALS: usize = 5;

/// The stand-in for a database: sleeps, counts its calls and their time.
#[derive(Clone)]
struct Db {
    delay: Duration,
    loads: Arc<AtomicU64>,
    /// Nanoseconds spent inside loads, summed.
    busy: Arc<AtomicU64>,
}

impl Loader<u64, String> for Db {
    type Error = std::io::Error;

    async fn load(&self, key: &u64) -> Result<Option<String>, Self::Error> {
        let started = Instant::now();
        tokio::time::sleep(self.delay).await;
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.busy
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
        Ok(Some(format!("product number {key}")))
    }
}

type FleetCache = Cache<u64, String, Db>;

fn instance(name: &str, url: &str, db: &Db) -> FleetCache {
    let client = redis::Client::open(url).expect("REDIS_URL");
    CacheBuilder::new(name)
        .with_l1(1_000)
        .with_redis(client)
        .with_redis_timeout(Duration::from_secs(5))
        .with_ttl(Duration::from_secs(600))
        .build(db.clone())
}

/// One trial: `CALLERS` tasks spread over the instances, released at once
/// on `key`; the time until the last has the value.
async fn trial(caches: &[FleetCache], key: u64) -> Duration {
    let (values, elapsed) = burst(CALLERS, |i| {
        let cache = caches[i % caches.len()].clone();
        async move { cache.get(&key).await }
    })
    .await;
    let expected = format!("product number {key}");
    for value in values {
        assert_eq!(value.expect("get").as_deref(), Some(expected.as_str()));
    }
    elapsed
}

fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let delay_ms: u64 = std::env::var("STAMPEDE_LOAD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let probe = redis::Client::open(url.as_str()).expect("REDIS_URL");
        tokio::time::timeout(
            Duration::from_secs(3),
            probe.get_multiplexed_async_connection(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("the stampede bench needs Redis at {url} (set REDIS_URL)"));

        let db = Db {
            delay: Duration::from_millis(delay_ms),
            loads: Arc::default(),
            busy: Arc::default(),
        };
        let name = format!("bench-stampede:{}", std::process::id());
        let caches: Vec<_> = (0..INSTANCES).map(|_| instance(&name, &url, &db)).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !caches.iter().all(Cache::is_subscribed) {
            assert!(Instant::now() < deadline, "the instances did not subscribe");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let mut times = Vec::with_capacity(TRIALS);
        let mut most_loads = 0;
        let mut fewest_loads = u64::MAX;
        for key in 0..TRIALS as u64 {
            let before = db.loads.load(Ordering::SeqCst);
            times.push(trial(&caches, key).await);
            let loads = db.loads.load(Ordering::SeqCst) - before;
            most_loads = most_loads.max(loads);
            fewest_loads = fewest_loads.min(loads);
        }
        let loads = db.loads.load(Ordering::SeqCst);
        let one_load = Duration::from_nanos(db.busy.load(Ordering::SeqCst) / loads.max(1));
        times.sort();
        let median = times[TRIALS / 2];
        println!(
            "stampede loads per trial = {most_loads} (max over {TRIALS} trials, min {fewest_loads}; \
             {CALLERS} callers over {INSTANCES} instances; goal: exactly 1) {}",
            if most_loads == 1 && fewest_loads == 1 { "OK" } else { "OVER GOAL" }
        );
        println!(
            "timing stampede time_to_all = {:.1} ms, one_load = {:.1} ms (median of {TRIALS} trials)",
            median.as_secs_f64() * 1e3,
            one_load.as_secs_f64() * 1e3
        );
        println!(
            "ratio stampede time_to_all/one_load = {:.2}",
            median.as_secs_f64() / one_load.as_secs_f64()
        );
    });
}
