//! The builder of a [`Cache`].

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
#[cfg(feature = "redis")]
use crate::error::ConfigError;
use crate::loader::Loader;
use crate::settings::Config;
#[cfg(feature = "redis")]
use crate::settings::FailMode;

/// Builds a [`Cache`]. Created with [`CacheBuilder::new`]; every option is a
/// `with_*` method and has a default.
///
/// | option | default |
/// |---|---|
/// | [`with_ttl`](Self::with_ttl) | 60 s |
/// | [`with_jitter`](Self::with_jitter) | 0.1 (TTLs shortened by up to 10 %) |
/// | [`with_negative_ttl`](Self::with_negative_ttl) | 5 s |
/// | [`with_entry_ttl`](Self::with_entry_ttl) | none |
/// | [`with_early_refresh`](Self::with_early_refresh) | off |
/// | `with_l1` / `with_l1_ttl` (`moka`) | no L1; L1 TTL = TTL, capped at 10 s when L2 is on |
/// | `with_redis` / `with_redis_url` / `with_redis_sentinel` and their options (`redis`) | no L2; see each method |
pub struct CacheBuilder<K, V> {
    config: Config<K, V>,
}

impl<K, V> fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("config", &self.config)
            .finish()
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Starts a cache named `name`. The name prefixes every Redis key and the
    /// invalidation channel, so caches sharing a Redis need distinct names;
    /// change it (e.g. `products:v2`) when the value's encoding changes.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            config: Config::new(name.into()),
        }
    }

    /// How long a loaded value stays cached (before jitter). This is the
    /// L2 (Redis) expiry when L2 is on, and the L1 expiry otherwise.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.config.settings.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Shortens every TTL by a random fraction of at most `jitter` (clamped to
    /// 0.0–1.0), so keys filled together do not expire together. A TTL never
    /// exceeds the configured one.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.config.settings.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How long a negative entry ("the loader found nothing") is kept, so a
    /// missing row is not looked up on every request. Jitter applies too.
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.config.settings.negative_ttl = Some(ttl.max(Duration::from_millis(1)));
        self
    }

    /// Stores nothing when the loader finds nothing.
    pub fn without_negative_caching(mut self) -> Self {
        self.config.settings.negative_ttl = None;
        self
    }

    /// Chooses a TTL per loaded value; `None` falls back to
    /// [`with_ttl`](Self::with_ttl), `Some(Duration::ZERO)` does not cache
    /// the value at all. Jitter applies to the result.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use cache_aside::CacheBuilder;
    /// let builder = CacheBuilder::<u64, String>::new("products")
    ///     .with_entry_ttl(|_id, name| name.starts_with("sale").then(|| Duration::from_secs(5)));
    /// # let _ = builder;
    /// ```
    pub fn with_entry_ttl<F>(mut self, ttl: F) -> Self
    where
        F: Fn(&K, &V) -> Option<Duration> + Send + Sync + 'static,
    {
        self.config.entry_ttl = Some(Arc::new(ttl));
        self
    }

    /// Turns on probabilistic early refresh ("XFetch"): a read refreshes the
    /// entry ahead of its expiry when `now − delta·beta·ln(rand()) ≥ expiry`,
    /// where `delta` is how long the last load took. `beta = 1.0` is the usual
    /// choice; larger values refresh earlier. The refresh runs in the reading
    /// call, at most once per key per process and (with L2) per fleet, and
    /// other callers keep getting the current value. If the refresh fails, the
    /// current (still valid) value is returned. Costs one clock read per hit.
    pub fn with_early_refresh(mut self, beta: f64) -> Self {
        self.config.settings.early_refresh = (beta.is_finite() && beta > 0.0).then_some(beta);
        self
    }

    /// Adds L1, the in-process tier: a `moka::future::Cache` bounded to
    /// `max_capacity` entries.
    #[cfg(feature = "moka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "moka")))]
    pub fn with_l1(mut self, max_capacity: u64) -> Self {
        self.config.l1.capacity = Some(max_capacity);
        self
    }

    /// Caps how long an entry lives in L1. With L2, invalidations reach
    /// other instances by pub/sub; this short TTL bounds staleness when a
    /// message is lost. Default: the TTL, capped at 10 s when L2 is on.
    #[cfg(feature = "moka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "moka")))]
    pub fn with_l1_ttl(mut self, ttl: Duration) -> Self {
        self.config.l1.ttl = Some(ttl.max(Duration::from_millis(1)));
        self
    }

    /// Adds L2 on the Redis server at `url`, for an application that has
    /// no `redis::Client` of its own; see [`with_redis`](Self::with_redis)
    /// for one that has.
    ///
    /// `url` is `redis://[user:password@]host[:port][/db]` (or
    /// `redis+unix:///path`). Only the URL is checked here: the connection is
    /// opened lazily, as with [`with_redis`](Self::with_redis). A `rediss://`
    /// URL (TLS) needs the TLS support of the `redis` crate enabled by the
    /// application (feature `tokio-rustls-comp`), and a rustls crypto
    /// provider installed by it: this crate installs none.
    ///
    /// ```
    /// # fn main() -> Result<(), cache_aside::ConfigError> {
    /// use cache_aside::CacheBuilder;
    ///
    /// let builder = CacheBuilder::<u64, String>::new("products")
    ///     .with_redis_url("redis://127.0.0.1:6379")?;
    /// # let _ = builder;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::RedisUrl`] if `url` is not a Redis URL this build of
    /// the `redis` crate can connect to.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_redis_url(self, url: &str) -> Result<Self, ConfigError>
    where
        K: fmt::Display + serde::Serialize + serde::de::DeserializeOwned,
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        let client = redis::Client::open(url).map_err(|e| ConfigError::RedisUrl(Box::new(e)))?;
        Ok(self.with_redis(client))
    }

    /// Adds L2 on the Redis server of `client`, a client the application
    /// already has (for its own commands, or built with TLS or credentials
    /// its own way); see [`with_redis_url`](Self::with_redis_url) to start
    /// from a URL.
    ///
    /// Keys are named after the key's `Display` form; the key's serde form
    /// travels on the invalidation channel, and values are stored as
    /// MessagePack. The connection is a `redis::aio::ConnectionManager`
    /// (reconnects by itself) opened lazily, so [`build`](Self::build)
    /// succeeds even while Redis is down.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_redis(mut self, client: redis::Client) -> Self
    where
        K: fmt::Display + serde::Serialize + serde::de::DeserializeOwned,
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        self.config.l2_server = Some(crate::settings::L2Server {
            source: crate::settings::L2Source::Client(client),
            codec: crate::codec::Codec::new(),
        });
        self
    }

    /// Adds L2 on the Redis master that the Sentinels at `sentinel_urls`
    /// know as `master_name`, and follows it across failovers without a
    /// restart.
    ///
    /// The first command asks the Sentinels for the master. When a command
    /// fails the way a dead or demoted master makes it fail (no connection,
    /// no answer in time, `READONLY`), the next one asks them again and
    /// connects to the master they name then; the invalidation subscription
    /// moves with it. No command is retried: during the switch L2 fails as
    /// configured ([`with_fail_mode`](Self::with_fail_mode), by default
    /// open, answering from L1 or the loader), for the commands in flight
    /// and then the [retry pause](Self::with_retry_after), until Sentinel
    /// has promoted a replica (its `down-after-milliseconds` plus the
    /// election). Invalidations sent to the old master in its last moments
    /// may be lost with it; the short L1 TTL bounds what that leaves stale.
    ///
    /// The master is reached with the username, password and database of
    /// the first Sentinel URL, and over TLS when that URL is `rediss://`
    /// (which needs the `redis` crate's TLS support, as for
    /// [`with_redis_url`](Self::with_redis_url)). Only the URLs are checked
    /// here: no connection is opened until the first command.
    ///
    /// ```
    /// # fn main() -> Result<(), cache_aside::ConfigError> {
    /// use cache_aside::CacheBuilder;
    ///
    /// let builder = CacheBuilder::<u64, String>::new("products").with_redis_sentinel(
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
    ///     "mymaster",
    /// )?;
    /// # let _ = builder;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::RedisUrl`] if a URL is not a Redis URL,
    /// [`ConfigError::NoSentinel`] if there is none.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_redis_sentinel<I>(
        mut self,
        sentinel_urls: I,
        master_name: &str,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
        K: fmt::Display + serde::Serialize + serde::de::DeserializeOwned,
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        use redis::IntoConnectionInfo;
        use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

        let bad_url = |e: redis::RedisError| ConfigError::RedisUrl(Box::new(e));
        let mut infos = Vec::new();
        for url in sentinel_urls {
            infos.push(url.as_ref().into_connection_info().map_err(bad_url)?);
        }
        let first = infos.first().ok_or(ConfigError::NoSentinel)?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone());
        if let redis::ConnectionAddr::TcpTls { .. } = first.addr() {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        let sentinel = SentinelClient::build(
            infos,
            String::from(master_name),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(bad_url)?;
        self.config.l2_server = Some(crate::settings::L2Server {
            source: crate::settings::L2Source::Sentinel(sentinel),
            codec: crate::codec::Codec::new(),
        });
        Ok(self)
    }

    /// Bounds every Redis command (default 250 ms); also the connection's
    /// response timeout. A call never waits longer than this on Redis.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_redis_timeout(mut self, timeout: Duration) -> Self {
        self.config.l2.op_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Bounds each connection attempt to Redis (default 1 s).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.l2.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// What reads do when Redis fails (default [`FailMode::Open`]).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_fail_mode(mut self, mode: FailMode) -> Self {
        self.config.l2.fail_mode = mode;
        self
    }

    /// After a Redis failure, reads skip Redis for this long before trying it
    /// again (default 1 s), so a dead server costs one timeout, not one per
    /// request.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_retry_after(mut self, pause: Duration) -> Self {
        self.config.l2.retry_after = pause;
        self
    }

    /// Lifetime of the fill lease (default 5 s): the longest a load may take
    /// before another instance may start a second one. The lease of a holder
    /// that crashed, or whose call was cancelled mid-load, simply expires;
    /// a failed load frees it at once.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.config.l2.lease_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// How long a miss waits for another instance's lease before loading
    /// itself (default: the lease TTL). Waiters poll Redis with backoff
    /// (2 ms doubling to 50 ms).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_lease_wait(mut self, wait: Duration) -> Self {
        self.config.l2.lease_wait = Some(wait);
        self
    }

    /// How long Redis remembers a key's generation after its last
    /// invalidation (default 24 h). Must exceed the longest possible load.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_generation_ttl(mut self, ttl: Duration) -> Self {
        self.config.l2.generation_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Builds the cache around `loader`.
    ///
    /// # Panics
    ///
    /// With L2 configured, panics when called outside a Tokio runtime:
    /// the invalidation listener is spawned here.
    pub fn build<L>(self, loader: L) -> Cache<K, V, L>
    where
        L: Loader<K, V>,
    {
        Cache::new(self.config, loader)
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn a_bad_redis_url_is_refused_at_once() {
        let refused = CacheBuilder::<u64, String>::new("t").with_redis_url("http://not-redis");
        let Err(ConfigError::RedisUrl(source)) = refused else {
            panic!("a non-Redis URL must be refused");
        };
        assert!(source.downcast_ref::<redis::RedisError>().is_some());
        assert!(
            CacheBuilder::<u64, String>::new("t")
                .with_redis_url("redis://127.0.0.1:1/0")
                .is_ok()
        );
    }

    #[test]
    fn sentinel_urls_are_checked_at_once() {
        let none: [&str; 0] = [];
        assert!(matches!(
            CacheBuilder::<u64, String>::new("t").with_redis_sentinel(none, "m"),
            Err(ConfigError::NoSentinel)
        ));
        assert!(matches!(
            CacheBuilder::<u64, String>::new("t")
                .with_redis_sentinel(["redis://127.0.0.1:1", "http://x"], "m"),
            Err(ConfigError::RedisUrl(_))
        ));
        assert!(
            CacheBuilder::<u64, String>::new("t")
                .with_redis_sentinel(["redis://127.0.0.1:1"], "m")
                .is_ok()
        );
    }
}
