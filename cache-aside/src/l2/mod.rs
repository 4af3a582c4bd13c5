//! L2, the tier shared by every instance, on Redis: values, leases,
//! generations and the invalidation channel.
//!
//! Keys for cache `name` and key `k` (its `Display` form):
//!
//! | key              | holds                                               |
//! |------------------|-----------------------------------------------------|
//! | `name:{k}:v`     | the encoded entry, with a `PX` expiry               |
//! | `name:{k}:g`     | the generation, bumped by every invalidation        |
//! | `name:{k}:l`     | the fill lease: a random token, `SET NX PX`         |
//! | `name:invalidate`| pub/sub channel carrying invalidated keys           |
//!
//! The braces make the three keys of one cache key share a hash slot.

mod bypass;
mod failure;
pub(crate) mod lease;
pub(crate) mod listener;
mod scripts;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::codec::Codec;
use crate::entry::{Entry, now_ms};
use crate::settings::{FailMode, L2Server, L2Settings};
use crate::stats::{Counters, bump};

use self::bypass::Bypass;
pub(crate) use self::failure::Failure;
use self::lease::{Acquire, LeaseFor};
use self::scripts::{ACQUIRE, FILL, INVALIDATE, RELEASE};

/// The host (or Unix socket path) and port of `addr`.
fn server_of(addr: &redis::ConnectionAddr) -> (String, Option<u16>) {
    match addr {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port)),
        other => (other.to_string(), None),
    }
}

/// A lookup in L2.
pub(crate) enum Lookup<V> {
    Hit(Entry<V>),
    Miss,
}

/// L2: one cache's keys on one Redis server.
pub(crate) struct L2<K, V> {
    conn: ConnectionManager,
    client: redis::Client,
    name: String,
    channel: String,
    settings: L2Settings,
    codec: Codec<K, V>,
    stats: Arc<Counters>,
    bypass: Bypass,
    subscribed: AtomicBool,
    /// `server.address` and `server.port` of the spans.
    server: (String, Option<u16>),
}

impl<K, V> std::fmt::Debug for L2<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<K, V> L2<K, V> {
    /// Builds the tier; the connection is opened lazily, so a Redis that is
    /// down at start-up does not stop the application from starting.
    pub(crate) fn new(
        server: L2Server<K, V>,
        name: &str,
        settings: L2Settings,
        stats: Arc<Counters>,
    ) -> Self {
        let L2Server { client, codec } = server;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.op_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .expect("a connection manager without push sender is always valid");
        let server = server_of(client.get_connection_info().addr());
        Self {
            conn,
            client,
            name: name.to_owned(),
            channel: format!("{name}:invalidate"),
            bypass: Bypass::new(settings.retry_after),
            settings,
            codec,
            stats,
            subscribed: AtomicBool::new(false),
            server,
        }
    }

    pub(crate) fn fail_mode(&self) -> FailMode {
        self.settings.fail_mode
    }

    pub(crate) fn lease_wait(&self) -> Duration {
        self.settings.lease_wait.unwrap_or(self.settings.lease_ttl)
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    fn base(&self, key: &K) -> String {
        format!("{}:{{{}}}:", self.name, (self.codec.key_name)(key))
    }

    fn keys(&self, key: &K) -> [String; 3] {
        let base = self.base(key);
        [format!("{base}v"), format!("{base}g"), format!("{base}l")]
    }

    /// `Err` while L2 is being bypassed after a failure.
    pub(crate) fn check_available(&self) -> Result<(), Failure> {
        self.bypass.check()
    }

    /// Runs one command, bounded by the configured timeout, and accounts for
    /// its failure.
    async fn run<T>(
        &self,
        op: &'static str,
        command: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, Failure> {
        let span = tracing::debug_span!(
            "cache_aside.redis",
            cache = %self.name,
            db.system = "redis",
            db.operation = op,
            otel.kind = "client",
            server.address = self.server.0.as_str(),
            server.port = self.server.1,
        );
        let bounded = tokio::time::timeout(self.settings.op_timeout, command);
        let failure = match tracing::Instrument::instrument(bounded, span).await {
            Ok(Ok(value)) => return Ok(value),
            // The connection's own response timeout.
            Ok(Err(e)) if e.is_timeout() => Failure::Timeout {
                op,
                after: self.settings.op_timeout,
            },
            Ok(Err(e)) => Failure::Redis {
                op,
                source: Arc::new(e),
            },
            Err(_) => Failure::Timeout {
                op,
                after: self.settings.op_timeout,
            },
        };
        bump(&self.stats.redis_errors);
        self.bypass.trip(&self.name, &failure);
        Err(failure)
    }

    /// Decodes a stored blob; one that cannot be decoded (say, written by a
    /// build with another value type) is deleted and reported as a miss.
    async fn decode_or_discard(&self, value_key: &str, bytes: &[u8]) -> Result<Lookup<V>, Failure> {
        match (self.codec.decode)(bytes) {
            Ok(entry) => Ok(Lookup::Hit(entry)),
            Err(error) => {
                bump(&self.stats.decode_errors);
                tracing::warn!(cache = %self.name, key = value_key, %error, "undecodable value in redis; discarding it");
                let mut conn = self.conn.clone();
                self.run(
                    "discard",
                    redis::cmd("DEL").arg(value_key).exec_async(&mut conn),
                )
                .await?;
                Ok(Lookup::Miss)
            }
        }
    }

    pub(crate) async fn get(&self, key: &K) -> Result<Lookup<V>, Failure> {
        let value_key = format!("{}v", self.base(key));
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = self
            .run(
                "get",
                redis::cmd("GET").arg(&value_key).query_async(&mut conn),
            )
            .await?;
        match bytes {
            Some(bytes) => self.decode_or_discard(&value_key, &bytes).await,
            None => Ok(Lookup::Miss),
        }
    }

    /// One `MGET` for the values and generations of `keys`.
    pub(crate) async fn get_many(&self, keys: &[K]) -> Result<Vec<(Lookup<V>, String)>, Failure> {
        let names: Vec<[String; 3]> = keys.iter().map(|k| self.keys(k)).collect();
        let mut cmd = redis::cmd("MGET");
        for [v, ..] in &names {
            cmd.arg(v);
        }
        for [_, g, _] in &names {
            cmd.arg(g);
        }
        let mut conn = self.conn.clone();
        let mut replies: Vec<Option<Vec<u8>>> =
            self.run("mget", cmd.query_async(&mut conn)).await?;
        let generations = replies.split_off(keys.len());
        let mut out = Vec::with_capacity(keys.len());
        for ((bytes, generation), [value_key, ..]) in
            replies.into_iter().zip(generations).zip(&names)
        {
            let lookup = match bytes {
                Some(bytes) => self.decode_or_discard(value_key, &bytes).await?,
                None => Lookup::Miss,
            };
            let generation = generation
                .map(|g| String::from_utf8_lossy(&g).into_owned())
                .unwrap_or_else(|| "0".to_owned());
            out.push((lookup, generation));
        }
        Ok(out)
    }

    /// Takes the fill lease for `key` with `token`, unless a value is
    /// stored (for a miss) or another instance holds the lease.
    pub(crate) async fn acquire(
        &self,
        key: &K,
        token: &str,
        lease_for: LeaseFor,
    ) -> Result<Acquire<V>, Failure> {
        let [v, g, l] = self.keys(key);
        let lease_ms = u64::try_from(self.settings.lease_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(&v)
            .key(&g)
            .key(&l)
            .arg(token)
            .arg(lease_ms)
            .arg(match lease_for {
                LeaseFor::Miss => "0",
                LeaseFor::Refresh => "1",
            });
        let mut conn = self.conn.clone();
        let (status, data): (i64, Vec<u8>) = self
            .run("acquire", invocation.invoke_async(&mut conn))
            .await?;
        Ok(match status {
            1 => match self.decode_or_discard(&v, &data).await? {
                Lookup::Hit(entry) => Acquire::Found(entry),
                // Discarded: the next poll takes the lease.
                Lookup::Miss => Acquire::Held("0".to_owned()),
            },
            2 => Acquire::Acquired(String::from_utf8_lossy(&data).into_owned()),
            _ => Acquire::Held(String::from_utf8_lossy(&data).into_owned()),
        })
    }

    /// Stores entries whose generation is still the one seen when their load
    /// began; returns, per entry, whether it was stored.
    pub(crate) async fn fill(
        &self,
        items: &[(&K, &Entry<V>, &str)],
        token: Option<&str>,
    ) -> Result<Vec<bool>, Failure> {
        let mut invocation = FILL.prepare_invoke();
        invocation.arg(token.unwrap_or(""));
        let mut encoded = Vec::with_capacity(items.len());
        let now = now_ms();
        for (i, (key, entry, generation)) in items.iter().enumerate() {
            let bytes = match (self.codec.encode)(entry) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(cache = %self.name, %error, "value could not be encoded; not stored in redis");
                    continue;
                }
            };
            let [v, g, l] = self.keys(key);
            let ttl_ms = entry.expires_at_ms.saturating_sub(now).max(1);
            invocation.key(v).key(g).key(l);
            invocation.arg(*generation).arg(ttl_ms).arg(bytes);
            encoded.push(i);
        }
        let mut stored = vec![false; items.len()];
        if encoded.is_empty() {
            return Ok(stored);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<i64> = self.run("fill", invocation.invoke_async(&mut conn)).await?;
        for (i, reply) in encoded.into_iter().zip(replies) {
            stored[i] = reply == 1;
        }
        Ok(stored)
    }

    /// Frees the lease if still held with `token` (after a failed load).
    pub(crate) async fn release(&self, key: &K, token: &str) {
        let [_, _, l] = self.keys(key);
        let mut invocation = RELEASE.prepare_invoke();
        invocation.key(l).arg(token);
        let mut conn = self.conn.clone();
        let _ = self
            .run::<i64>("release", invocation.invoke_async(&mut conn))
            .await;
    }

    pub(crate) async fn invalidate(&self, key: &K) -> Result<(), Failure> {
        let [v, g, l] = self.keys(key);
        // An empty message asks every instance to flush its whole L1, which
        // is always correct; it is only needed if a key cannot be encoded.
        let message = (self.codec.key_encode)(key).unwrap_or_default();
        let generation_ms = u64::try_from(self.settings.generation_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = INVALIDATE.prepare_invoke();
        invocation
            .key(v)
            .key(g)
            .key(l)
            .arg(generation_ms)
            .arg(&self.channel)
            .arg(message);
        let mut conn = self.conn.clone();
        self.run::<i64>("invalidate", invocation.invoke_async(&mut conn))
            .await
            .map(drop)
    }

    pub(crate) fn decode_key(&self, message: &[u8]) -> Option<K> {
        (self.codec.key_decode)(message)
    }
}
