//! Shared helpers: a counting "database" loader and Redis connections that
//! fail loudly. Private `redis-server` processes for outage tests come from
//! `test-support`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_aside::{Cache, CacheBuilder, Loader};
use tokio::sync::oneshot;

pub(crate) use test_support::redis::{RedisConfig, RedisServer};

pub(crate) type TestCache = Cache<u64, String, Db>;

/// Redis timeout for tests that are not about outages: the 2-core CI box can
/// starve Redis or the test for longer than the 250 ms default, and failing
/// open would then hide what the test checks.
pub(crate) const PATIENT: Duration = Duration::from_secs(2);

/// The Redis server shared by tests: `REDIS_URL`, else the local default.
pub(crate) fn redis_url() -> String {
    test_support::redis::shared_url()
}

/// A client for the shared server, after checking that it answers. A test
/// that needs Redis fails here, loudly, when there is none.
pub(crate) async fn shared_client() -> redis::Client {
    let url = redis_url();
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|e| panic!("REDIS_URL={url} is not a valid Redis URL: {e}"));
    let ping = async {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => {
            panic!("this test needs a Redis server at {url} (set REDIS_URL), but it failed: {e}")
        }
        Err(_) => panic!(
            "this test needs a Redis server at {url} (set REDIS_URL), but it did not answer within 3 s"
        ),
    }
}

/// A raw connection for inspecting what the cache stored.
pub(crate) async fn raw(client: &redis::Client) -> redis::aio::MultiplexedConnection {
    client
        .get_multiplexed_async_connection()
        .await
        .expect("raw redis connection")
}

/// A cache name no other test (or earlier run) uses.
pub(crate) fn unique(test: &str) -> String {
    test_support::unique(&format!("cache-aside-test:{test}"))
}

/// Waits until the cache's invalidation subscription is up.
pub(crate) async fn wait_subscribed(cache: &TestCache) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cache.is_subscribed() {
        assert!(
            Instant::now() < deadline,
            "cache {} did not subscribe to its invalidation channel within 5 s",
            cache.name()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A loader over an in-memory table that counts its calls and can be slowed,
/// paused, or made to fail.
#[derive(Clone, Default)]
pub(crate) struct Db {
    inner: Arc<DbInner>,
}

#[derive(Default)]
struct DbInner {
    rows: Mutex<HashMap<u64, String>>,
    loads: AtomicUsize,
    batches: AtomicUsize,
    batch_keys: Mutex<Vec<Vec<u64>>>,
    delay_ms: AtomicU64,
    failures: AtomicUsize,
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

/// Handle to a paused load: [`Paused::started`] resolves once the loader has
/// read its row; [`Paused::release`] lets it return.
pub(crate) struct Paused {
    started: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Paused {
    pub(crate) async fn started(&mut self) {
        tokio::time::timeout(Duration::from_secs(5), &mut self.started)
            .await
            .expect("the loader did not start within 5 s")
            .expect("loader gate dropped");
    }

    pub(crate) fn release(self) {
        let _ = self.release.send(());
    }
}

impl Db {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_rows(rows: impl IntoIterator<Item = (u64, &'static str)>) -> Self {
        let db = Self::new();
        for (k, v) in rows {
            db.set(k, v);
        }
        db
    }

    pub(crate) fn set(&self, key: u64, value: &str) {
        self.inner
            .rows
            .lock()
            .unwrap()
            .insert(key, value.to_owned());
    }

    pub(crate) fn loads(&self) -> usize {
        self.inner.loads.load(Ordering::SeqCst)
    }

    pub(crate) fn batches(&self) -> usize {
        self.inner.batches.load(Ordering::SeqCst)
    }

    pub(crate) fn batch_keys(&self) -> Vec<Vec<u64>> {
        self.inner.batch_keys.lock().unwrap().clone()
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        self.inner
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next `n` loads fail.
    pub(crate) fn fail_next(&self, n: usize) {
        self.inner.failures.store(n, Ordering::SeqCst);
    }

    /// The next load reads its row, then waits for [`Paused::release`].
    pub(crate) fn pause_next(&self) -> Paused {
        let (started_tx, started) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        *self.inner.gate.lock().unwrap() = Some((started_tx, release_rx));
        Paused { started, release }
    }
}

impl Loader<u64, String> for Db {
    type Error = std::io::Error;

    async fn load(&self, key: &u64) -> Result<Option<String>, Self::Error> {
        self.inner.loads.fetch_add(1, Ordering::SeqCst);
        // Read first, as a database would; whatever happens later, this is
        // the value this load returns.
        let row = self.inner.rows.lock().unwrap().get(key).cloned();
        let gate = self.inner.gate.lock().unwrap().take();
        if let Some((started, release)) = gate {
            let _ = started.send(());
            let _ = release.await;
        }
        let delay = self.inner.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let fail = self
            .inner
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(std::io::Error::other("database unavailable"));
        }
        Ok(row)
    }

    async fn load_many(&self, keys: &[u64]) -> Result<HashMap<u64, String>, Self::Error> {
        self.inner.batches.fetch_add(1, Ordering::SeqCst);
        self.inner.batch_keys.lock().unwrap().push(keys.to_vec());
        let rows = self.inner.rows.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| rows.get(k).map(|v| (*k, v.clone())))
            .collect())
    }
}

/// A builder with a long L1 TTL, so that only invalidation can make L1 fresh.
pub(crate) fn builder(name: &str) -> CacheBuilder<u64, String> {
    CacheBuilder::new(name)
        .with_ttl(Duration::from_secs(60))
        .with_l1_ttl(Duration::from_secs(60))
}

/// Asserts that `fut` finishes within `limit` and returns its output and the
/// time it took.
pub(crate) async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> (T, Duration) {
    let started = Instant::now();
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => (out, started.elapsed()),
        Err(_) => panic!("{what} took longer than {limit:?}"),
    }
}

/// Reads `key` until it is served by Redis (an L2 hit with no new load).
pub(crate) async fn wait_until_redis_serves(cache: &TestCache, db: &Db, key: u64) {
    let what = "the cache to use Redis again";
    test_support::wait_until(what, Duration::from_secs(10), || async move {
        let _ = cache.get(&key).await;
        let (hits, loads) = (cache.stats().l2_hits, db.loads());
        matches!(cache.get(&key).await, Ok(Some(_)))
            && cache.stats().l2_hits > hits
            && db.loads() == loads
    })
    .await;
}
