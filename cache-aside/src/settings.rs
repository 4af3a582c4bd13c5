//! What a cache is configured with: filled in by
//! [`CacheBuilder`](crate::CacheBuilder), read by [`Cache`](crate::Cache).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Computes a per-entry time to live; see
/// [`CacheBuilder::with_entry_ttl`](crate::CacheBuilder::with_entry_ttl).
pub(crate) type EntryTtl<K, V> = Arc<dyn Fn(&K, &V) -> Option<Duration> + Send + Sync>;

/// What a read does when Redis (L2) fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailMode {
    /// Go around L2: call the loader (still coalesced per process), log and
    /// count ([`CacheStats::fail_open`](crate::CacheStats::fail_open)).
    /// The default: a cache outage degrades into database load, not errors.
    #[default]
    Open,
    /// Return [`Error::Redis`](crate::Error::Redis),
    /// [`Error::Timeout`](crate::Error::Timeout) or
    /// [`Error::Unavailable`](crate::Error::Unavailable) without calling the
    /// loader, to shield a database that cannot take the uncached load.
    Closed,
}

/// Options that do not depend on the key and value types.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) ttl: Duration,
    pub(crate) jitter: f64,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) early_refresh: Option<f64>,
}

impl Settings {
    pub(crate) fn new(name: String) -> Self {
        Self {
            name,
            ttl: Duration::from_secs(60),
            jitter: 0.1,
            negative_ttl: Some(Duration::from_secs(5)),
            early_refresh: None,
        }
    }
}

/// Options of L1, the in-process tier.
#[cfg(feature = "moka")]
#[derive(Debug, Clone, Default)]
pub(crate) struct L1Settings {
    /// `None`: no L1.
    pub(crate) capacity: Option<u64>,
    /// `None`: the TTL, capped at 10 s when L2 is on.
    pub(crate) ttl: Option<Duration>,
}

/// Options of L2, the tier on Redis.
#[cfg(feature = "redis")]
#[derive(Debug, Clone)]
pub(crate) struct L2Settings {
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) lease_wait: Option<Duration>,
    pub(crate) fail_mode: FailMode,
    pub(crate) retry_after: Duration,
    pub(crate) generation_ttl: Duration,
}

#[cfg(feature = "redis")]
impl Default for L2Settings {
    fn default() -> Self {
        Self {
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(5),
            lease_wait: None,
            fail_mode: FailMode::Open,
            retry_after: Duration::from_secs(1),
            generation_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The Redis server of L2 and how keys and values travel to it.
#[cfg(feature = "redis")]
pub(crate) struct L2Server<K, V> {
    pub(crate) source: L2Source,
    pub(crate) codec: crate::codec::Codec<K, V>,
}

/// How L2 reaches its server.
#[cfg(feature = "redis")]
pub(crate) enum L2Source {
    /// One server.
    Client(redis::Client),
    /// The master the Sentinels name, followed across failovers.
    Sentinel(redis::sentinel::SentinelClient),
}

#[cfg(feature = "redis")]
impl fmt::Debug for L2Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L2Source::Client(client) => {
                write!(f, "{}", client.get_connection_info().addr())
            }
            L2Source::Sentinel(_) => f.write_str("sentinel"),
        }
    }
}

/// Everything a cache is built from.
pub(crate) struct Config<K, V> {
    pub(crate) settings: Settings,
    pub(crate) entry_ttl: Option<EntryTtl<K, V>>,
    #[cfg(feature = "moka")]
    pub(crate) l1: L1Settings,
    /// `None`: no L2.
    #[cfg(feature = "redis")]
    pub(crate) l2_server: Option<L2Server<K, V>>,
    #[cfg(feature = "redis")]
    pub(crate) l2: L2Settings,
}

impl<K, V> Config<K, V> {
    pub(crate) fn new(name: String) -> Self {
        Self {
            settings: Settings::new(name),
            entry_ttl: None,
            #[cfg(feature = "moka")]
            l1: L1Settings::default(),
            #[cfg(feature = "redis")]
            l2_server: None,
            #[cfg(feature = "redis")]
            l2: L2Settings::default(),
        }
    }
}

#[cfg(feature = "moka")]
impl<K, V> Config<K, V> {
    /// How long an entry may live in L1: as configured, else the TTL,
    /// capped at 10 s when L2 is on (its invalidation messages can be lost).
    pub(crate) fn l1_ttl(&self) -> Duration {
        #[cfg(feature = "redis")]
        let has_l2 = self.l2_server.is_some();
        #[cfg(not(feature = "redis"))]
        let has_l2 = false;
        let default = if has_l2 {
            self.settings.ttl.min(Duration::from_secs(10))
        } else {
            self.settings.ttl
        };
        self.l1.ttl.unwrap_or(default)
    }
}

impl<K, V> fmt::Debug for Config<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Config");
        d.field("settings", &self.settings)
            .field("entry_ttl", &self.entry_ttl.is_some());
        #[cfg(feature = "moka")]
        d.field("l1", &self.l1);
        #[cfg(feature = "redis")]
        d.field(
            "l2_server",
            &self.l2_server.as_ref().map(|server| &server.source),
        )
        .field("l2", &self.l2);
        d.finish()
    }
}
