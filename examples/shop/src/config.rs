//! Configuration from the environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::db::Backend;

/// Which session store the shop uses (`SESSION_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// In this process: one instance only (or sticky load balancing).
    Memory,
    /// Sealed in the cookie itself (`COOKIE_KEYS`).
    Cookie,
    /// Redis (`REDIS_URL`, or `REDIS_CLUSTER_URLS` for a cluster).
    Redis,
    /// DynamoDB (`DYNAMODB_ENDPOINT`, `DYNAMODB_TABLE`, `AWS_*`).
    DynamoDb,
    /// Memcached, one node or several (`MEMCACHED_URLS`).
    Memcached,
}

/// Where the product caches keep entries (`CACHE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheKind {
    /// No cache: every product read queries the database (concurrent
    /// reads of one product still share one query).
    None,
    /// In process (moka).
    Local,
    /// In process, then shared in Redis (`REDIS_URL`).
    Redis,
}

/// The shop's settings, read from environment variables.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// `SHOP_ADDR`: where to listen (default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// `ADMIN_ADDR`: where to serve `/metrics`, `/status` and
    /// `PUT /products/{sku}/price` (default: nowhere). Keep it off the
    /// public network.
    pub admin_addr: Option<SocketAddr>,
    /// `SESSION_STORE`: `memory` (default), `cookie`, `redis`, `dynamodb` or
    /// `memcached`.
    pub session_store: StoreKind,
    /// `COOKIE_SECURE`: whether the session cookie is `Secure` (default
    /// `true`; browsers accept secure cookies on `http://localhost`).
    pub secure_cookie: bool,
    /// `COOKIE_KEYS`: comma-separated base64 AES-256 keys for the cookie
    /// store, current key first. Without it the cookie store makes a random
    /// key at start-up, so its sessions do not survive a restart and are not
    /// shared between instances.
    pub cookie_keys: Option<String>,
    /// `REDIS_URL`: a single Redis node, for `SESSION_STORE=redis` and
    /// `CACHE=redis`.
    pub redis_url: Option<String>,
    /// `REDIS_CLUSTER_URLS`: comma-separated nodes of a Redis Cluster; when
    /// set, `SESSION_STORE=redis` uses the cluster.
    pub redis_cluster_urls: Vec<String>,
    /// `REDIS_NEAR_CACHE`: how many sessions the Redis store keeps in
    /// process, invalidated by Redis (default 0: none; see
    /// `RedisStoreBuilder::with_near_cache`).
    pub redis_near_cache: usize,
    /// `REDIS_SENTINEL_URLS`: comma-separated Redis Sentinels; when set
    /// (and no cluster is), `SESSION_STORE=redis` uses the master they
    /// name [`redis_sentinel_master`](Self::redis_sentinel_master) and
    /// follows its failovers.
    pub redis_sentinel_urls: Vec<String>,
    /// `REDIS_SENTINEL_MASTER`: the Sentinels' name of the sessions'
    /// master (default `mymaster`).
    pub redis_sentinel_master: String,
    /// `REDIS_WAIT_REPLICAS`: how many replicas must confirm each session
    /// write before it counts as done (default 0: none; see
    /// `RedisStoreBuilder::with_wait_replicas`).
    pub redis_wait_replicas: u32,
    /// `REDIS_WAIT_TIMEOUT_MS`: how long a session write waits for those
    /// replicas before the request answers `503` (default 500).
    pub redis_wait_timeout: std::time::Duration,
    /// `DYNAMODB_ENDPOINT`: another endpoint than AWS's (an emulator).
    /// Region and credentials come from the usual `AWS_*` variables.
    pub dynamodb_endpoint: Option<String>,
    /// `DYNAMODB_TABLE`: the sessions table, created if missing (default
    /// `shop_sessions`).
    pub dynamodb_table: String,
    /// `MEMCACHED_URLS`: the Memcached nodes, `host:port,host:port`, for
    /// `SESSION_STORE=memcached`.
    pub memcached_urls: Option<String>,
    /// `DYNAMODB_CREATE_TABLE`: whether start-up creates the sessions table
    /// when it is missing and turns on its TTL (default `true`). Set it to
    /// `false` where the table is managed by the infrastructure and the
    /// role may only read and write items.
    pub dynamodb_create_table: bool,
    /// `DATABASE_URL`: `sqlite:…`, `postgres://…` or `mysql://…` (default:
    /// the SQLite file `shop.db` in [`data_dir`](Self::data_dir)).
    pub database_url: Option<String>,
    /// `DATABASE_REPLICA_URLS`: comma-separated read replicas of the same
    /// kind as the primary.
    pub replica_urls: Vec<String>,
    /// `SHOP_DATA_DIR`: where the default SQLite file lives (default: the
    /// working directory).
    pub data_dir: PathBuf,
    /// `CACHE`: `none`, `local` (default) or `redis`.
    pub cache: CacheKind,
    /// `SESSION_MAX_ATTEMPTS`: how often a session save is retried when
    /// concurrent requests of the same user keep saving first (default 64).
    pub session_max_attempts: u32,
    /// `SESSION_STORE_TIMEOUT_MS`: the bound on each session store call
    /// (default 3000).
    pub session_store_timeout: std::time::Duration,
    /// `SHOP_INSTANCE`: this instance's name in the page footer (default:
    /// the address it listens on).
    pub instance: Option<String>,
    /// `SHOP_FOOTER`: `on` (default) or `off`: whether every page shows
    /// which instance served it, the session store, and where its data
    /// came from (the primary, a replica or the cache).
    pub footer: bool,
}

/// A setting that could not be used, naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// Its value (`<redacted>` for secrets).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            admin_addr: None,
            session_store: StoreKind::Memory,
            secure_cookie: true,
            cookie_keys: None,
            redis_url: None,
            redis_cluster_urls: Vec::new(),
            redis_near_cache: 0,
            redis_sentinel_urls: Vec::new(),
            redis_sentinel_master: "mymaster".to_owned(),
            redis_wait_replicas: 0,
            redis_wait_timeout: std::time::Duration::from_millis(500),
            dynamodb_endpoint: None,
            dynamodb_table: "shop_sessions".to_owned(),
            memcached_urls: None,
            dynamodb_create_table: true,
            database_url: None,
            replica_urls: Vec::new(),
            data_dir: PathBuf::from("."),
            cache: CacheKind::Local,
            session_max_attempts: 64,
            session_store_timeout: std::time::Duration::from_secs(3),
            instance: None,
            footer: true,
        }
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let userinfo = &url[start + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// [`redact`] of each URL.
fn redact_all(urls: &[String]) -> Vec<String> {
    urls.iter().map(|u| redact(u)).collect()
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .field("session_store", &self.session_store)
            .field("secure_cookie", &self.secure_cookie)
            .field("cookie_keys", &self.cookie_keys.as_ref().map(|_| "<set>"))
            .field("redis_url", &self.redis_url.as_deref().map(redact))
            .field("redis_cluster_urls", &redact_all(&self.redis_cluster_urls))
            .field("redis_near_cache", &self.redis_near_cache)
            .field(
                "redis_sentinel_urls",
                &redact_all(&self.redis_sentinel_urls),
            )
            .field("redis_sentinel_master", &self.redis_sentinel_master)
            .field("redis_wait_replicas", &self.redis_wait_replicas)
            .field("redis_wait_timeout", &self.redis_wait_timeout)
            .field("dynamodb_endpoint", &self.dynamodb_endpoint)
            .field("dynamodb_table", &self.dynamodb_table)
            .field("memcached_urls", &self.memcached_urls)
            .field("dynamodb_create_table", &self.dynamodb_create_table)
            .field("database_url", &self.database_url.as_deref().map(redact))
            .field("replica_urls", &redact_all(&self.replica_urls))
            .field("data_dir", &self.data_dir)
            .field("cache", &self.cache)
            .field("session_max_attempts", &self.session_max_attempts)
            .field("session_store_timeout", &self.session_store_timeout)
            .field("instance", &self.instance)
            .field("footer", &self.footer)
            .finish()
    }
}

const TRUE_OR_FALSE: &str = "expected true or false";

/// `true`/`1` or `false`/`0`.
fn boolean(v: &str) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Config {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    ///
    /// A variable whose value cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads the settings through `lookup` (for tests). Empty values count
    /// as unset.
    ///
    /// # Errors
    ///
    /// A variable whose value cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut config = Config::default();
        let bad = |var: &'static str, value: &str, reason: &str| ConfigError {
            var,
            value: redact(value),
            reason: reason.to_owned(),
        };
        if let Some(v) = lookup("SHOP_ADDR") {
            config.addr = v
                .parse()
                .map_err(|e| bad("SHOP_ADDR", &v, &format!("{e} (expected host:port)")))?;
        }
        if let Some(v) = lookup("ADMIN_ADDR") {
            config.admin_addr = Some(
                v.parse()
                    .map_err(|e| bad("ADMIN_ADDR", &v, &format!("{e} (expected host:port)")))?,
            );
        }
        if let Some(v) = lookup("SESSION_STORE") {
            config.session_store = match v.as_str() {
                "memory" => StoreKind::Memory,
                "cookie" => StoreKind::Cookie,
                "redis" => StoreKind::Redis,
                "dynamodb" => StoreKind::DynamoDb,
                "memcached" => StoreKind::Memcached,
                _ => {
                    return Err(bad(
                        "SESSION_STORE",
                        &v,
                        "expected memory, cookie, redis, dynamodb or memcached",
                    ));
                }
            };
        }
        if let Some(v) = lookup("COOKIE_SECURE") {
            config.secure_cookie =
                boolean(&v).ok_or_else(|| bad("COOKIE_SECURE", &v, TRUE_OR_FALSE))?;
        }
        if let Some(v) = lookup("COOKIE_KEYS") {
            if let Err(e) = session_stores::CookieStore::from_base64_keys(&v) {
                return Err(bad("COOKIE_KEYS", "<redacted>", &e.to_string()));
            }
            config.cookie_keys = Some(v);
        }
        if let Some(v) = lookup("REDIS_URL") {
            if !(v.starts_with("redis://") || v.starts_with("rediss://")) {
                return Err(bad("REDIS_URL", &v, "expected a redis:// or rediss:// URL"));
            }
            config.redis_url = Some(v);
        }
        if let Some(v) = lookup("REDIS_CLUSTER_URLS") {
            config.redis_cluster_urls = list(&v);
            if config
                .redis_cluster_urls
                .iter()
                .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
            {
                return Err(bad(
                    "REDIS_CLUSTER_URLS",
                    &v,
                    "expected comma-separated redis:// or rediss:// URLs",
                ));
            }
        }
        if let Some(v) = lookup("REDIS_NEAR_CACHE") {
            config.redis_near_cache =
                v.parse().ok().filter(|n| *n <= 10_000_000).ok_or_else(|| {
                    bad(
                        "REDIS_NEAR_CACHE",
                        &v,
                        "expected a number of sessions from 0 to 10000000",
                    )
                })?;
        }
        if let Some(v) = lookup("REDIS_SENTINEL_URLS") {
            config.redis_sentinel_urls = list(&v);
            if config
                .redis_sentinel_urls
                .iter()
                .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
            {
                return Err(bad(
                    "REDIS_SENTINEL_URLS",
                    &v,
                    "expected comma-separated redis:// or rediss:// URLs",
                ));
            }
        }
        if let Some(v) = lookup("REDIS_SENTINEL_MASTER") {
            config.redis_sentinel_master = v;
        }
        if let Some(v) = lookup("REDIS_WAIT_REPLICAS") {
            config.redis_wait_replicas = v.parse().ok().filter(|n| *n <= 100).ok_or_else(|| {
                bad(
                    "REDIS_WAIT_REPLICAS",
                    &v,
                    "expected a number of replicas from 0 to 100",
                )
            })?;
        }
        if let Some(v) = lookup("REDIS_WAIT_TIMEOUT_MS") {
            config.redis_wait_timeout = v
                .parse()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .map(std::time::Duration::from_millis)
                .ok_or_else(|| {
                    bad(
                        "REDIS_WAIT_TIMEOUT_MS",
                        &v,
                        "expected milliseconds from 1 to 60000",
                    )
                })?;
        }
        if let Some(v) = lookup("DYNAMODB_ENDPOINT") {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                return Err(bad(
                    "DYNAMODB_ENDPOINT",
                    &v,
                    "expected an http:// or https:// URL",
                ));
            }
            config.dynamodb_endpoint = Some(v);
        }
        if let Some(v) = lookup("DYNAMODB_TABLE") {
            let valid = (3..=255).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(bad(
                    "DYNAMODB_TABLE",
                    &v,
                    "expected 3 to 255 letters, digits, '_', '-' or '.'",
                ));
            }
            config.dynamodb_table = v;
        }
        if let Some(v) = lookup("MEMCACHED_URLS") {
            let nodes = list(&v);
            let valid = !nodes.is_empty()
                && nodes.iter().all(|n| {
                    n.rsplit_once(':')
                        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
                });
            if !valid {
                return Err(bad(
                    "MEMCACHED_URLS",
                    &v,
                    "expected comma-separated host:port nodes",
                ));
            }
            config.memcached_urls = Some(nodes.join(","));
        }
        if let Some(v) = lookup("DYNAMODB_CREATE_TABLE") {
            config.dynamodb_create_table =
                boolean(&v).ok_or_else(|| bad("DYNAMODB_CREATE_TABLE", &v, TRUE_OR_FALSE))?;
        }
        let mut backend = None;
        if let Some(v) = lookup("DATABASE_URL") {
            backend = Some(Backend::of_url(&v).map_err(|e| bad("DATABASE_URL", &v, &e))?);
            config.database_url = Some(v);
        }
        if let Some(v) = lookup("DATABASE_REPLICA_URLS") {
            config.replica_urls = list(&v);
            for url in &config.replica_urls {
                let kind =
                    Backend::of_url(url).map_err(|e| bad("DATABASE_REPLICA_URLS", url, &e))?;
                if kind != backend.unwrap_or(Backend::Sqlite) {
                    return Err(bad(
                        "DATABASE_REPLICA_URLS",
                        url,
                        "replicas must be of the same database as DATABASE_URL",
                    ));
                }
            }
        }
        if let Some(v) = lookup("SHOP_DATA_DIR") {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(v) = lookup("CACHE") {
            config.cache = match v.as_str() {
                "none" => CacheKind::None,
                "local" => CacheKind::Local,
                "redis" => CacheKind::Redis,
                _ => return Err(bad("CACHE", &v, "expected none, local or redis")),
            };
        }
        if let Some(v) = lookup("SESSION_MAX_ATTEMPTS") {
            config.session_max_attempts = v
                .parse()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "SESSION_MAX_ATTEMPTS",
                        &v,
                        "expected a number from 1 to 1000000",
                    )
                })?;
        }
        if let Some(v) = lookup("SESSION_STORE_TIMEOUT_MS") {
            config.session_store_timeout = v
                .parse()
                .ok()
                .filter(|ms| (1..=600_000).contains(ms))
                .map(std::time::Duration::from_millis)
                .ok_or_else(|| {
                    bad(
                        "SESSION_STORE_TIMEOUT_MS",
                        &v,
                        "expected milliseconds from 1 to 600000",
                    )
                })?;
        }
        if let Some(v) = lookup("SHOP_INSTANCE") {
            if v.len() > 64 || v.chars().any(char::is_control) {
                return Err(bad(
                    "SHOP_INSTANCE",
                    &v,
                    "expected a name of at most 64 printable characters",
                ));
            }
            config.instance = Some(v);
        }
        if let Some(v) = lookup("SHOP_FOOTER") {
            config.footer = match v.as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(bad("SHOP_FOOTER", &v, "expected on or off")),
            };
        }
        let needs_redis_url = (config.session_store == StoreKind::Redis
            && config.redis_cluster_urls.is_empty()
            && config.redis_sentinel_urls.is_empty())
            || config.cache == CacheKind::Redis;
        if needs_redis_url && config.redis_url.is_none() {
            return Err(bad(
                "REDIS_URL",
                "",
                "required with SESSION_STORE=redis (or set REDIS_CLUSTER_URLS or \
                 REDIS_SENTINEL_URLS) and with CACHE=redis",
            ));
        }
        if config.session_store == StoreKind::Memcached && config.memcached_urls.is_none() {
            return Err(bad(
                "MEMCACHED_URLS",
                "",
                "required with SESSION_STORE=memcached",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone()))
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = with(&[("SESSION_STORE", "mongo")]).unwrap_err();
        assert_eq!(err.var, "SESSION_STORE");
        assert!(err.to_string().contains("SESSION_STORE=\"mongo\""), "{err}");
        for (var, value) in [
            ("SHOP_ADDR", "nowhere"),
            ("CACHE", "disk"),
            ("DATABASE_URL", "oracle://db"),
            ("DATABASE_URL", "postgres://h:notaport/db"),
            ("REDIS_URL", "localhost:6379"),
            ("DYNAMODB_TABLE", "a"),
            ("SESSION_MAX_ATTEMPTS", "0"),
            ("SESSION_STORE_TIMEOUT_MS", "soon"),
            ("REDIS_NEAR_CACHE", "-1"),
            ("REDIS_SENTINEL_URLS", "sentinel:26379"),
            ("REDIS_WAIT_REPLICAS", "many"),
            ("REDIS_WAIT_TIMEOUT_MS", "0"),
            ("COOKIE_KEYS", "short"),
            ("MEMCACHED_URLS", "cache.internal"),
            ("MEMCACHED_URLS", "a:1,b:port"),
            ("SHOP_FOOTER", "maybe"),
            ("DYNAMODB_CREATE_TABLE", "yes"),
        ] {
            let err = with(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
        let err = with(&[
            ("DATABASE_URL", "postgres://u:secret@h/db"),
            ("DATABASE_REPLICA_URLS", "mysql://u:secret@r/db"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "DATABASE_REPLICA_URLS");
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = with(&[("SESSION_STORE", "redis")]).unwrap_err();
        assert_eq!(err.var, "REDIS_URL");
        let err = with(&[("SESSION_STORE", "memcached")]).unwrap_err();
        assert_eq!(err.var, "MEMCACHED_URLS");
    }

    #[test]
    fn defaults_need_no_server() {
        let ok = with(&[]).unwrap();
        assert_eq!(ok.addr.port(), 3000);
        assert_eq!(ok.session_store, StoreKind::Memory);
        assert_eq!(ok.cache, CacheKind::Local);
        assert_eq!(ok.database_url, None);
        assert!(ok.footer && ok.dynamodb_create_table);
        assert_eq!(ok.instance, None);
        let ok = with(&[
            ("SHOP_FOOTER", "off"),
            ("SHOP_INSTANCE", "i-0abc"),
            ("DYNAMODB_CREATE_TABLE", "false"),
        ])
        .unwrap();
        assert!(!ok.footer && !ok.dynamodb_create_table);
        assert_eq!(ok.instance.as_deref(), Some("i-0abc"));
        let ok = with(&[
            ("SESSION_STORE", "redis"),
            ("REDIS_CLUSTER_URLS", "redis://a:1, redis://b:2"),
        ])
        .unwrap();
        assert_eq!(ok.redis_cluster_urls.len(), 2);
        let ok = with(&[
            ("SESSION_STORE", "memcached"),
            ("MEMCACHED_URLS", "127.0.0.1:11211, 127.0.0.1:11212"),
        ])
        .unwrap();
        assert_eq!(ok.session_store, StoreKind::Memcached);
        assert_eq!(
            ok.memcached_urls.as_deref(),
            Some("127.0.0.1:11211,127.0.0.1:11212")
        );
        let ok = with(&[
            ("SESSION_STORE", "redis"),
            ("REDIS_SENTINEL_URLS", "redis://s1:26379,redis://s2:26379"),
            ("REDIS_SENTINEL_MASTER", "sessions"),
            ("REDIS_WAIT_REPLICAS", "1"),
            ("REDIS_WAIT_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        assert_eq!(ok.redis_sentinel_urls.len(), 2);
        assert_eq!(ok.redis_sentinel_master, "sessions");
        assert_eq!(ok.redis_wait_replicas, 1);
        assert_eq!(ok.redis_wait_timeout, std::time::Duration::from_millis(250));
    }

    #[test]
    fn debug_hides_secrets() {
        let config = Config {
            database_url: Some("postgres://app:hunter2@db/shop".into()),
            cookie_keys: Some("c2VjcmV0".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("c2VjcmV0"),
            "{text}"
        );
    }
}
