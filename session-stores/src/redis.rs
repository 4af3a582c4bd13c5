//! The Redis store: single node, Redis Cluster, TLS and ACL users.
//!
//! [`RedisStore`] keeps each session in one Redis hash and does every
//! write as one atomic Lua script, so saves are compare-and-set on the
//! record's version across any number of app instances.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use session_core::SessionLayer;
//! use session_stores::RedisStore;
//!
//! # async fn run() -> session_core::Result<()> {
//! // Defaults: keys `session:{<id>}`, 1 s connection and response timeouts.
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let layer = SessionLayer::new(store);
//!
//! // TLS with a private CA, an ACL user, and a prefix of our own.
//! let ca = std::fs::read("/etc/redis/ca.crt").expect("CA certificate");
//! let store = RedisStore::builder()
//!     .with_key_prefix("shop:session:")
//!     .with_tls_root_cert_pem(ca)
//!     .with_response_timeout(Duration::from_millis(300))
//!     .connect("rediss://app:secret@redis.internal:6380")
//!     .await?;
//!
//! // Redis Cluster: any reachable nodes; the rest is discovered.
//! let store = RedisStore::connect_cluster([
//!     "redis://10.0.0.1:6379",
//!     "redis://10.0.0.2:6379",
//!     "redis://10.0.0.3:6379",
//! ])
//! .await?;
//! # let _ = (layer, store);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! A session lives under the key `<prefix>{<id>}` (default prefix
//! `session:`). The braces are a Cluster hash tag, so every key of one
//! session maps to one hash slot. The key is a hash with four fields:
//!
//! | field | content |
//! |-------|---------|
//! | `v`   | the record's version, in decimal |
//! | `e`   | the expiry in milliseconds since the Unix epoch (absent: none) |
//! | `d`   | the record as written by [`Record::encode`] |
//! | `w`   | a random token naming the last write, so that a write the client retries after a lost reply is recognised as already done |
//!
//! The expiry is also the key's TTL (`PEXPIREAT`, to the millisecond), so
//! Redis evicts expired sessions by itself; a session without expiry has
//! no TTL. Reads filter on `e` as well, so a record past its expiry is never
//! returned even if the clocks of Redis and the app differ.
//!
//! # Cost
//!
//! | operation | Redis commands |
//! |-----------|----------------|
//! | `load`    | 1 (`HMGET`); none when served by the [near cache](#near-cache), `HMGET` + `PTTL` in one round trip when it fills it |
//! | `create`, `save`, `touch` | 1 (`EVALSHA`; `EVAL` once more after a `NOSCRIPT` reply, e.g. after a restart or failover) |
//! | `delete`  | 1 (`DEL`) |
//!
//! Through the [`SessionLayer`](session_core::SessionLayer) a request that
//! only reads its session costs one command, a request that changes it two
//! (load and save; one for a new session), and a request that does not use
//! its session none.
//!
//! # Near cache
//!
//! [`RedisStoreBuilder::with_near_cache`] keeps recently read sessions in
//! the app's process, so a read-only request for one of them makes no
//! round trip at all. Redis itself tells the connection when another
//! client changes a cached key (`CLIENT TRACKING` over RESP3), and writes
//! stay compare-and-set in Redis, so no update is lost. The price is that
//! a read may miss another instance's write for up to the near-cache TTL
//! (default 2 s, usually far less); the builder method documents the exact
//! guarantees.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! let store = session_stores::RedisStore::builder()
//!     .with_near_cache(100_000)
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Redis Cluster
//!
//! The cluster client follows `MOVED` (refreshing its slot map) and `ASK`
//! redirections by itself. A redirected command has not run, so `create`'s
//! insert-only check still runs exactly once, atomically, on the node that
//! owns the slot. If a connection drops after a write ran but before its
//! reply arrived, the client sends it again; the write token in `w` lets
//! the script answer "done" instead of reporting a conflict, so an update
//! is never applied twice.
//!
//! On failover, Redis replicates asynchronously: a write acknowledged by a
//! master in the last moment before it crashed may be missing on the
//! promoted replica, and that session is then read as it was before the
//! write. Reads and new sessions work again once a replica has been
//! promoted and the client has refreshed its slot map (about
//! `cluster-node-timeout` plus a second).
//!
//! # Failures
//!
//! | situation | result |
//! |-----------|--------|
//! | Redis down, refused, reset | [`Error::Backend`]; the layer answers `503` with `Retry-After: 1`. The single-node connection reconnects in the background, the cluster connection refreshes its topology; later calls work again without a restart |
//! | no reply within the response timeout | [`Error::Timeout`]; `503` as well. The layer's own store timeout bounds each call too |
//! | a record above Redis's 512 MB value limit | rejected by Redis: [`Error::Backend`] (the store sets no lower limit of its own) |
//! | a key under the prefix that is not a session hash, or an unknown record format | [`Error::Decode`], never a panic; the layer answers `500` |
//!
//! [`Error::Backend`]: session_core::Error::Backend
//! [`Error::Timeout`]: session_core::Error::Timeout
//! [`Error::Decode`]: session_core::Error::Decode

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::caching::{CacheConfig, CacheMode};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, CommandCacheConfig, ErrorKind, FromRedisValue, IntoConnectionInfo, ProtocolVersion,
    RedisError, ServerErrorKind, TlsCertificates,
};
use session_core::store::{DecodeError, Record, now, unix_millis};
use session_core::{Error, Id, Result, SessionStore};
use time::OffsetDateTime;

const DEFAULT_PREFIX: &str = "session:";
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_NEAR_CACHE_TTL: Duration = Duration::from_secs(2);

/// Sessions in Redis: a single node (over an auto-reconnecting connection)
/// or a Redis Cluster, with or without TLS.
///
/// Every write is one atomic Lua script, so saves are compare-and-set on
/// the version across all app instances, creates never overwrite, and
/// touches change the expiry only. See the [module documentation](self)
/// for an example, the key layout, command counts and failure behaviour.
///
/// Clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    prefix: Box<str>,
    response_timeout: Duration,
    scripts: Scripts,
    near: Option<NearCache>,
}

/// Bookkeeping of the near cache beside redis-rs's own cache.
///
/// An entry can be stale for up to the near cache's TTL: Redis's
/// invalidation of a key can overtake the reply of the read that fills the
/// entry (redis-rs stores the reply after it handed it over, and Redis
/// invalidates a tracked key only once), and a connection that dies
/// without closing delivers none. Reads of a session this store wrote (or
/// tried to write) therefore go to Redis until that TTL has passed since
/// the write was answered, so that an instance always reads its own
/// writes.
struct NearCache {
    /// The near cache's TTL: how long reads bypass it after a write.
    window: Duration,
    recent: Mutex<RecentWrites>,
}

struct RecentWrites {
    at: HashMap<String, Instant>,
    /// The size at which old entries are dropped next: twice what was
    /// left after the last pruning, so pruning costs amortised O(1) per
    /// write.
    prune_at: usize,
}

impl NearCache {
    fn new(window: Duration) -> Self {
        NearCache {
            window,
            recent: Mutex::new(RecentWrites {
                at: HashMap::new(),
                prune_at: 1024,
            }),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentWrites> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wrote(&self, key: &str) {
        let now = Instant::now();
        let mut recent = self.recent();
        if recent.at.len() >= recent.prune_at {
            recent
                .at
                .retain(|_, at| now.duration_since(*at) < self.window);
            recent.prune_at = (recent.at.len() * 2).max(1024);
        }
        recent.at.insert(key.to_owned(), now);
    }

    fn wrote_recently(&self, key: &str) -> bool {
        self.recent()
            .at
            .get(key)
            .is_some_and(|at| at.elapsed() < self.window)
    }
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field(
                "mode",
                &match self.inner.conn {
                    Conn::Single(_) => "single node",
                    Conn::Cluster(_) => "cluster",
                },
            )
            .field("prefix", &self.inner.prefix)
            .field("response_timeout", &self.inner.response_timeout)
            .field("near_cache", &self.inner.near.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to a single Redis node with the default settings (see
    /// [`RedisStoreBuilder`]).
    ///
    /// `url` is `redis://[user:password@]host[:port][/db]`, or `rediss://…`
    /// for TLS (verified against the system's root certificates; see
    /// [`RedisStoreBuilder::with_tls_root_cert_pem`] for a private CA).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid or the server cannot be
    /// reached or refuses the credentials.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().connect(url).await
    }

    /// Connects to a Redis Cluster with the default settings, given one or
    /// more of its nodes (the others are discovered). All URLs must use the
    /// same scheme and credentials.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid or no node can be reached.
    pub async fn connect_cluster<I>(urls: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Self::builder().connect_cluster(urls).await
    }

    /// Settings for a new store.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            prefix: DEFAULT_PREFIX.into(),
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            root_cert: None,
            near_cache: None,
            near_cache_ttl: DEFAULT_NEAR_CACHE_TTL,
        }
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis key of the session `id`: `<prefix>{<id>}`.
    pub fn key(&self, id: &Id) -> String {
        format!("{}{{{}}}", self.inner.prefix, id.as_str())
    }

    /// Runs a script: `EVALSHA`, and `EVAL` with the source if the server
    /// does not have it cached (which also caches it there).
    async fn script(&self, script: &Lua, key: &str, args: &[&[u8]]) -> redis::RedisResult<i64> {
        let with = |verb: &str, first: &[u8]| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(first).arg(1).arg(key);
            for a in args {
                cmd.arg(*a);
            }
            cmd
        };
        let hash = script.script.get_hash().as_bytes();
        match self.inner.conn.query(&with("EVALSHA", hash)).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                tracing::debug!(
                    script = script.name,
                    "script not cached on the server, sending EVAL"
                );
                self.inner
                    .conn
                    .query(&with("EVAL", script.source.as_bytes()))
                    .await
            }
            other => other,
        }
    }

    /// Notes a write (or attempted write) of `key` for the near cache.
    fn wrote(&self, key: &str) {
        if let Some(near) = &self.inner.near {
            near.wrote(key);
        }
    }

    fn error(&self, op: &'static str, err: RedisError) -> Error {
        if err.code() == Some("WRONGTYPE") {
            return Error::Decode(DecodeError::Malformed(format!(
                "a key under the session prefix {:?} is not a session hash",
                self.inner.prefix
            )));
        }
        if err.is_timeout() {
            return Error::Timeout(self.inner.response_timeout);
        }
        Error::backend(RedisStoreError::Command { op, source: err })
    }
}

/// Builds a [`RedisStore`]: key prefix, timeouts and TLS roots, then
/// [`connect`](Self::connect) or [`connect_cluster`](Self::connect_cluster).
#[derive(Clone)]
pub struct RedisStoreBuilder {
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    root_cert: Option<Vec<u8>>,
    near_cache: Option<NonZeroUsize>,
    near_cache_ttl: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("root_cert", &self.root_cert.as_ref().map(|_| "set"))
            .field("near_cache", &self.near_cache)
            .field("near_cache_ttl", &self.near_cache_ttl)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `session:`), so sessions can share
    /// a database with other data.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one attempt to open a connection may take (default 1 s).
    pub fn with_connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long to wait for the reply to one command (default 1 s); a
    /// command that takes longer fails with [`Error::Timeout`]. On a
    /// cluster this also bounds the command's redirections and retries.
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Trust the CA certificate(s) in `pem` for `rediss://` connections
    /// instead of the system's root certificates, e.g. a private CA that
    /// signed the server's certificate. The server name in the URL is still
    /// checked against the certificate.
    ///
    /// TLS is rustls with the ring crypto provider. If the process has not
    /// installed a rustls provider when the store connects over TLS, ring's
    /// is installed as the process default; an application that wants
    /// another one installs it before connecting.
    pub fn with_tls_root_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_cert = Some(pem.into());
        self
    }

    /// Keep up to `sessions` recently read sessions in this process (a
    /// near cache), so that a read of one of them makes no round trip.
    /// Off by default; `0` turns it off.
    ///
    /// This is Redis's server-assisted client-side caching: the connection
    /// speaks RESP3 and turns on `CLIENT TRACKING`, and Redis tells it when
    /// any client changes or deletes a key it has cached, which drops the
    /// entry. It needs Redis 6 or later (7 or later for a Cluster whose
    /// slots move). What it changes:
    ///
    /// - Writes are unaffected: every save is still a compare-and-set in
    ///   Redis, and a save computed from a cached record that another
    ///   instance has since changed loses it and is re-applied, so no
    ///   update is lost.
    /// - This instance reads its own writes: after it writes a session,
    ///   its reads of that session go to Redis for one near-cache TTL.
    /// - A read on one instance normally sees another instance's write as
    ///   soon as Redis's invalidation arrives (one network hop). It can miss
    ///   it for up to the near-cache TTL ([`with_near_cache_ttl`], default
    ///   2 s): when the invalidation overtakes the reply of the read that
    ///   fills the entry, or when the connection dies without closing. The
    ///   TTL is the bound on staleness; raise it only where reads of a
    ///   session that lag other instances' writes by that much are fine.
    /// - A Redis user restricted by ACL needs `HELLO`, `CLIENT TRACKING`,
    ///   `CLIENT CACHING` and `PTTL` as well (see the project's
    ///   `SECURITY.md`).
    ///
    /// [`with_near_cache_ttl`]: Self::with_near_cache_ttl
    pub fn with_near_cache(mut self, sessions: usize) -> Self {
        self.near_cache = NonZeroUsize::new(sessions);
        self
    }

    /// The longest an entry stays in the near cache (default 2 s): the
    /// bound on how stale a near-cache read can be, and how long this
    /// instance's reads of a session go to Redis after it wrote it.
    pub fn with_near_cache_ttl(mut self, ttl: Duration) -> Self {
        self.near_cache_ttl = ttl;
        self
    }

    fn cache_config(&self) -> Option<CacheConfig> {
        self.near_cache.map(|size| {
            CacheConfig::new()
                .set_mode(CacheMode::OptIn)
                .set_size(size)
                .set_default_client_ttl(self.near_cache_ttl)
        })
    }

    fn tls_certs(&self) -> Option<TlsCertificates> {
        self.root_cert.as_ref().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    /// Connects to a single Redis node; see [`RedisStore::connect`].
    ///
    /// The connection is multiplexed (one connection serves all concurrent
    /// calls) and reconnects in the background after a failure.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid or the server cannot be
    /// reached or refuses the credentials.
    #[tracing::instrument(name = "redis_connect", level = "debug", skip_all)]
    pub async fn connect(self, url: &str) -> Result<RedisStore> {
        if is_tls(url) {
            ensure_crypto_provider();
        }
        let mut info = url
            .into_connection_info()
            .map_err(RedisStoreError::Connect)
            .map_err(Error::backend)?;
        if self.near_cache.is_some() {
            let settings = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            info = info.set_redis_settings(settings);
        }
        let client = match self.tls_certs() {
            Some(certs) => redis::Client::build_with_tls(info, certs),
            None => redis::Client::open(info),
        }
        .map_err(RedisStoreError::Connect)
        .map_err(Error::backend)?;
        let mut config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(2);
        if let Some(cache) = self.cache_config() {
            config = config.set_cache_config(cache);
        }
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(RedisStoreError::Connect)
            .map_err(Error::backend)?;
        Ok(self.finish(Conn::Single(manager)))
    }

    /// Connects to a Redis Cluster; see [`RedisStore::connect_cluster`].
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid or no node can be reached.
    #[tracing::instrument(name = "redis_connect_cluster", level = "debug", skip_all)]
    pub async fn connect_cluster<I>(self, urls: I) -> Result<RedisStore>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        if urls.iter().any(|u| is_tls(u)) {
            ensure_crypto_provider();
        }
        let mut builder = ClusterClient::builder(urls)
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.response_timeout);
        if let Some(certs) = self.tls_certs() {
            builder = builder.certs(certs);
        }
        if let Some(cache) = self.cache_config() {
            builder = builder
                .use_protocol(ProtocolVersion::RESP3)
                .cache_config(cache);
        }
        let client = builder
            .build()
            .map_err(RedisStoreError::Connect)
            .map_err(Error::backend)?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(RedisStoreError::Connect)
            .map_err(Error::backend)?;
        Ok(self.finish(Conn::Cluster(conn)))
    }

    fn finish(self, conn: Conn) -> RedisStore {
        RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix: self.prefix.into_boxed_str(),
                response_timeout: self.response_timeout,
                scripts: Scripts::new(),
                near: self.near_cache.map(|_| NearCache::new(self.near_cache_ttl)),
            }),
        }
    }
}

fn is_tls(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
}

/// rustls needs a process-wide crypto provider when more than one (or none)
/// is compiled in; install ring's unless the application chose one.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The store's own errors, carried inside
/// [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum RedisStoreError {
    #[error("cannot connect to Redis: {0}")]
    Connect(#[source] RedisError),
    #[error("Redis {op} failed: {source}")]
    Command {
        op: &'static str,
        #[source]
        source: RedisError,
    },
    #[error("Redis {op} script replied {reply}, expected 0 or 1")]
    UnexpectedReply { op: &'static str, reply: i64 },
}

// ---- scripts ------------------------------------------------------------

struct Lua {
    name: &'static str,
    source: &'static str,
    script: redis::Script,
}

impl Lua {
    fn new(name: &'static str, source: &'static str) -> Self {
        Lua {
            name,
            source,
            script: redis::Script::new(source),
        }
    }
}

struct Scripts {
    create: Lua,
    save: Lua,
    touch: Lua,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            create: Lua::new("create", CREATE),
            save: Lua::new("save", SAVE),
            touch: Lua::new("touch", TOUCH),
        }
    }
}

/// Lua: `set_expiry` sets field `e` and the key's TTL to `at` (ms since the
/// epoch), or removes both when `at` is empty; `write` also sets the
/// version, data and write token.
macro_rules! lua_helpers {
    () => {
        r"
local function write(key, v, d, w, at)
  if at == '' then
    redis.call('HSET', key, 'v', v, 'd', d, 'w', w)
    redis.call('HDEL', key, 'e')
    redis.call('PERSIST', key)
  else
    redis.call('HSET', key, 'v', v, 'd', d, 'w', w, 'e', at)
    redis.call('PEXPIREAT', key, at)
  end
end
local function set_expiry(key, at)
  if at == '' then
    redis.call('HDEL', key, 'e')
    redis.call('PERSIST', key)
  else
    redis.call('HSET', key, 'e', at)
    redis.call('PEXPIREAT', key, at)
  end
end
"
    };
}

/// KEYS[1] = key; ARGV = version, expiry ms or '', data, now ms, write token.
/// Returns 1 if written (or already written by this very call), 0 if a live
/// record holds the key.
const CREATE: &str = concat!(
    lua_helpers!(),
    r"
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  local cur = redis.call('HMGET', key, 'e', 'w')
  if cur[2] == ARGV[5] then return 1 end
  if not cur[1] or tonumber(cur[1]) > tonumber(ARGV[4]) then return 0 end
  redis.call('DEL', key)
end
write(key, ARGV[1], ARGV[3], ARGV[5], ARGV[2])
return 1
"
);

/// KEYS[1] = key; ARGV = expected version, new version, expiry ms or '',
/// data, now ms, write token. Returns 1 if written (or already written by
/// this very call), 0 if the stored version differs or the record is gone.
const SAVE: &str = concat!(
    lua_helpers!(),
    r"
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'e', 'w')
if cur[1] ~= ARGV[1] then
  if cur[1] == ARGV[2] and cur[3] == ARGV[6] then return 1 end
  return 0
end
if cur[2] and tonumber(cur[2]) <= tonumber(ARGV[5]) then return 0 end
write(key, ARGV[2], ARGV[4], ARGV[6], ARGV[3])
return 1
"
);

/// KEYS[1] = key; ARGV = expiry ms or '', now ms. Returns 1 if the live
/// record's expiry was set, 0 if there is none.
const TOUCH: &str = concat!(
    lua_helpers!(),
    r"
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'e')
if not cur[1] then return 0 end
if cur[2] and tonumber(cur[2]) <= tonumber(ARGV[2]) then return 0 end
set_expiry(key, ARGV[1])
return 1
"
);

fn expiry_arg(at: Option<OffsetDateTime>) -> String {
    at.map(|t| unix_millis(t).to_string()).unwrap_or_default()
}

fn reply_to_bool(op: &'static str, reply: i64) -> Result<bool> {
    match reply {
        0 => Ok(false),
        1 => Ok(true),
        reply => Err(Error::backend(RedisStoreError::UnexpectedReply {
            op,
            reply,
        })),
    }
}

/// Builds a record from the fields `v`, `e` and `d` of its hash, or `None`
/// if there is no hash or it has expired at `now`.
fn parse_fields(
    id: &Id,
    fields: [Option<Vec<u8>>; 3],
    now: OffsetDateTime,
) -> Result<Option<Record>> {
    let malformed = |what: String| Error::Decode(DecodeError::Malformed(what));
    let [v, e, d] = fields;
    if v.is_none() && e.is_none() && d.is_none() {
        return Ok(None);
    }
    let number = |name: &str, raw: &[u8]| -> Result<i64> {
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| malformed(format!("session hash field `{name}` is not a number")))
    };
    let expires_ms = e.as_deref().map(|raw| number("e", raw)).transpose()?;
    if expires_ms.is_some_and(|ms| ms <= unix_millis(now)) {
        return Ok(None);
    }
    let version = v
        .as_deref()
        .map(|raw| number("v", raw))
        .transpose()?
        .ok_or_else(|| malformed("session hash has no version field `v`".into()))?;
    let data = d.ok_or_else(|| malformed("session hash has no data field `d`".into()))?;
    let record = Record::decode_with_metadata(id.clone(), &data, version, expires_ms)?;
    Ok(Some(record))
}

#[async_trait]
impl SessionStore for RedisStore {
    #[tracing::instrument(name = "redis_create", level = "debug", skip_all, fields(id = ?record.id))]
    async fn create(&self, record: &mut Record) -> Result<()> {
        let data = record.encode()?;
        let version = record.version.to_string();
        let expires = expiry_arg(record.expires_at);
        let token = Id::random();
        loop {
            let key = self.key(&record.id);
            self.wrote(&key);
            let now = unix_millis(now()).to_string();
            let reply = self
                .script(
                    &self.inner.scripts.create,
                    &key,
                    &[
                        version.as_bytes(),
                        expires.as_bytes(),
                        &data,
                        now.as_bytes(),
                        token.as_str().as_bytes(),
                    ],
                )
                .await;
            // Again once answered: the window counts from the reply.
            self.wrote(&key);
            let reply = reply.map_err(|e| self.error("create", e))?;
            if reply_to_bool("create", reply)? {
                return Ok(());
            }
            tracing::debug!("session ID taken, retrying with a fresh one");
            record.id = Id::random();
        }
    }

    #[tracing::instrument(name = "redis_load", level = "debug", skip_all, fields(id = ?id))]
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = self.key(id);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key).arg("v").arg("e").arg("d");
        if let Some(near) = &self.inner.near
            && !near.wrote_recently(&key)
        {
            cmd.set_cache_config(CommandCacheConfig::new());
        }
        let fields: Vec<Option<Vec<u8>>> = self
            .inner
            .conn
            .query(&cmd)
            .await
            .map_err(|e| self.error("load", e))?;
        let fields: [Option<Vec<u8>>; 3] = fields.try_into().map_err(|_| {
            Error::backend(RedisStoreError::UnexpectedReply {
                op: "HMGET",
                reply: -1,
            })
        })?;
        parse_fields(id, fields, now())
    }

    #[tracing::instrument(name = "redis_save", level = "debug", skip_all, fields(id = ?record.id, expected_version))]
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        let data = record.encode()?;
        let key = self.key(&record.id);
        self.wrote(&key);
        let reply = self
            .script(
                &self.inner.scripts.save,
                &key,
                &[
                    expected_version.to_string().as_bytes(),
                    record.version.to_string().as_bytes(),
                    expiry_arg(record.expires_at).as_bytes(),
                    &data,
                    unix_millis(now()).to_string().as_bytes(),
                    Id::random().as_str().as_bytes(),
                ],
            )
            .await;
        self.wrote(&key);
        let reply = reply.map_err(|e| self.error("save", e))?;
        reply_to_bool("save", reply)
    }

    #[tracing::instrument(name = "redis_delete", level = "debug", skip_all, fields(id = ?id))]
    async fn delete(&self, id: &Id) -> Result<()> {
        let key = self.key(id);
        self.wrote(&key);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&key);
        let deleted: redis::RedisResult<i64> = self.inner.conn.query(&cmd).await;
        self.wrote(&key);
        deleted.map_err(|e| self.error("delete", e))?;
        Ok(())
    }

    #[tracing::instrument(name = "redis_touch", level = "debug", skip_all, fields(id = ?id))]
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        let key = self.key(id);
        self.wrote(&key);
        let reply = self
            .script(
                &self.inner.scripts.touch,
                &key,
                &[
                    expiry_arg(expires_at).as_bytes(),
                    unix_millis(now()).to_string().as_bytes(),
                ],
            )
            .await;
        self.wrote(&key);
        let reply = reply.map_err(|e| self.error("touch", e))?;
        reply_to_bool("touch", reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::store::Data;

    fn sample(expires_at: Option<OffsetDateTime>) -> Record {
        let mut data = Data::new();
        data.insert("k".into(), serde_json::json!("v").into());
        let mut r = Record::new(Id::random(), data, now(), expires_at);
        r.version = 7;
        r
    }

    #[test]
    fn fields_round_trip_and_expiry_comes_from_e() {
        let r = sample(Some(now() + time::Duration::hours(1)));
        let later = now() + time::Duration::hours(2);
        let fields = [
            Some(b"7".to_vec()),
            Some(unix_millis(later).to_string().into_bytes()),
            Some(r.encode().unwrap()),
        ];
        let loaded = parse_fields(&r.id, fields, now()).unwrap().unwrap();
        assert_eq!(loaded.expires_at, Some(later));
        assert_eq!((loaded.version, &loaded.data), (r.version, &r.data));
    }

    #[test]
    fn missing_and_expired_are_none() {
        let r = sample(None);
        assert!(
            parse_fields(&r.id, [None, None, None], now())
                .unwrap()
                .is_none()
        );
        let past = unix_millis(now()) - 1;
        let fields = [
            Some(b"7".to_vec()),
            Some(past.to_string().into_bytes()),
            Some(r.encode().unwrap()),
        ];
        assert!(parse_fields(&r.id, fields, now()).unwrap().is_none());
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let r = sample(None);
        let mut bad_format = r.encode().unwrap();
        bad_format[0] = 200;
        for fields in [
            [Some(b"7".to_vec()), None, Some(bad_format)],
            [Some(b"x".to_vec()), None, Some(r.encode().unwrap())],
            [Some(b"8".to_vec()), None, Some(r.encode().unwrap())],
            [Some(b"7".to_vec()), None, None],
            [None, None, Some(r.encode().unwrap())],
            [Some(b"7".to_vec()), None, Some(Vec::new())],
        ] {
            let got = parse_fields(&r.id, fields.clone(), now());
            assert!(
                matches!(got, Err(Error::Decode(_))),
                "{fields:?} gave {got:?}"
            );
        }
    }

    #[test]
    fn tls_scheme_detection() {
        assert!(is_tls("rediss://h:1"));
        assert!(is_tls("REDISS://h:1"));
        assert!(!is_tls("redis://h:1"));
        assert!(!is_tls("redis"));
    }
}
