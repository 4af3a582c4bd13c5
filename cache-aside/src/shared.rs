//! The shared tier (L2) on Redis: values, leases, generations and the
//! invalidation channel.
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

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};

use crate::FailMode;
use crate::entry::{Entry, now_ms};
use crate::error::Error;
use crate::stats::{Counters, bump};

/// Returns the value if present; otherwise takes the lease if it is free.
/// Replies `{1, value}`, `{2, generation}` (lease taken) or `{3, generation}`
/// (someone else holds it). With ARGV[3] = '1' the value is ignored (early
/// refresh of a value that is still there).
const ACQUIRE_LUA: &str = r"
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
end
local g = redis.call('GET', KEYS[2]) or '0'
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, g}
end
return {3, g}
";

/// Stores entries whose generation did not move since the fill began, and
/// frees the caller's lease. KEYS are (value, generation, lease) triples;
/// ARGV[1] is the lease token ('' for none), then (generation, ttl ms,
/// payload) per entry. Replies one 1 (stored) or 0 (stale) per entry.
const FILL_LUA: &str = r"
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local v, g, l = KEYS[3*i+1], KEYS[3*i+2], KEYS[3*i+3]
  if ARGV[1] ~= '' and redis.call('GET', l) == ARGV[1] then
    redis.call('DEL', l)
  end
  if (redis.call('GET', g) or '0') == ARGV[3*i+2] then
    redis.call('SET', v, ARGV[3*i+4], 'PX', ARGV[3*i+3])
    out[i+1] = 1
  else
    out[i+1] = 0
  end
end
return out
";

/// Frees a lease if the caller still holds it.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Bumps the generation (so running fills cannot store), drops the value and
/// any lease, and tells every instance.
const INVALIDATE_LUA: &str = r"
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
";

static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_LUA));
static FILL: LazyLock<Script> = LazyLock::new(|| Script::new(FILL_LUA));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LUA));
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| Script::new(INVALIDATE_LUA));

/// How often the invalidation subscription is pinged to detect a dead link.
const SUBSCRIPTION_PING: Duration = Duration::from_secs(1);
/// Backoff bounds while polling another instance's lease.
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// Type-specific conversions, captured where the serde bounds are known so
/// that the cache itself does not need them.
pub(crate) struct Codec<K, V> {
    pub(crate) key_name: fn(&K) -> String,
    pub(crate) key_encode: fn(&K) -> Option<Vec<u8>>,
    pub(crate) key_decode: fn(&[u8]) -> Option<K>,
    pub(crate) encode: fn(&Entry<V>) -> Result<Vec<u8>, String>,
    pub(crate) decode: fn(&[u8]) -> Result<Entry<V>, String>,
}

impl<K, V> Codec<K, V>
where
    K: std::fmt::Display + serde::Serialize + serde::de::DeserializeOwned,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    pub(crate) fn new() -> Self {
        Self {
            key_name: |k| k.to_string(),
            key_encode: |k| rmp_serde::to_vec(k).ok(),
            key_decode: |b| rmp_serde::from_slice(b).ok(),
            encode: |e| crate::entry::wire::encode(e).map_err(|e| e.to_string()),
            decode: |b| crate::entry::wire::decode(b).map_err(|e| e.to_string()),
        }
    }
}

/// Settings of the shared tier.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) lease_wait: Option<Duration>,
    pub(crate) fail_mode: FailMode,
    pub(crate) retry_after: Duration,
    pub(crate) generation_ttl: Duration,
}

impl Default for Options {
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

/// Why a Redis step did not happen.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Redis {
        op: &'static str,
        source: Arc<redis::RedisError>,
    },
    Timeout {
        op: &'static str,
        after: Duration,
    },
    Unavailable {
        retry_in: Duration,
    },
}

impl Failure {
    pub(crate) fn into_error<E>(self) -> Error<E> {
        match self {
            Failure::Redis { op, source } => Error::Redis { op, source },
            Failure::Timeout { op, after } => Error::Timeout { op, after },
            Failure::Unavailable { retry_in } => Error::Unavailable { retry_in },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Redis { op, source } => write!(f, "redis `{op}` failed: {source}"),
            Failure::Timeout { op, after } => write!(f, "redis `{op}` timed out after {after:?}"),
            Failure::Unavailable { retry_in } => {
                write!(f, "redis bypassed for another {retry_in:?}")
            }
        }
    }
}

/// A lookup in the shared tier.
pub(crate) enum Lookup<V> {
    Hit(Entry<V>),
    Miss,
}

/// Reply of the acquire script.
pub(crate) enum Acquire<V> {
    /// The value is there (filled by someone else meanwhile).
    Found(Entry<V>),
    /// The lease is ours; carries the generation seen when taking it.
    Acquired(String),
    /// Someone else holds the lease; carries the current generation.
    Held(String),
}

pub(crate) struct Shared<K, V> {
    conn: ConnectionManager,
    client: redis::Client,
    name: String,
    channel: String,
    pub(crate) options: Options,
    codec: Codec<K, V>,
    stats: Arc<Counters>,
    started: Instant,
    down_until_ms: AtomicU64,
    subscribed: AtomicBool,
}

impl<K, V> std::fmt::Debug for Shared<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<K, V> Shared<K, V> {
    /// Builds the tier; the connection is opened lazily, so a Redis that is
    /// down at start-up does not stop the application from starting.
    pub(crate) fn new(
        client: redis::Client,
        name: &str,
        options: Options,
        codec: Codec<K, V>,
        stats: Arc<Counters>,
    ) -> Self {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.op_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .expect("a connection manager without push sender is always valid");
        Self {
            conn,
            client,
            name: name.to_owned(),
            channel: format!("{name}:invalidate"),
            options,
            codec,
            stats,
            started: Instant::now(),
            down_until_ms: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
        }
    }

    pub(crate) fn fail_mode(&self) -> FailMode {
        self.options.fail_mode
    }

    pub(crate) fn lease_wait(&self) -> Duration {
        self.options.lease_wait.unwrap_or(self.options.lease_ttl)
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

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `Err` while the tier is being bypassed after a failure. Reads the
    /// clock only while a bypass is recorded (clock reads are slow on some
    /// hosts, and this runs on every L2 access).
    pub(crate) fn check_available(&self) -> Result<(), Failure> {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return Ok(());
        }
        let now = self.elapsed_ms();
        if now < until {
            return Err(Failure::Unavailable {
                retry_in: Duration::from_millis(until - now),
            });
        }
        // The pause is over; clear it unless a new failure extended it.
        let _ = self
            .down_until_ms
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        Ok(())
    }

    fn trip(&self, failure: &Failure) {
        let now = self.elapsed_ms();
        let retry = u64::try_from(self.options.retry_after.as_millis()).unwrap_or(u64::MAX);
        // Never 0, which means "no bypass".
        let until = now.saturating_add(retry).max(1);
        let previous = self.down_until_ms.swap(until, Ordering::Relaxed);
        if previous <= now {
            tracing::warn!(
                cache = %self.name,
                error = %failure,
                retry_after = ?self.options.retry_after,
                "redis failing; bypassing the shared tier"
            );
        } else {
            tracing::debug!(cache = %self.name, error = %failure, "redis still failing");
        }
    }

    /// Runs one command, bounded by the configured timeout, and accounts for
    /// its failure.
    async fn run<T>(
        &self,
        op: &'static str,
        command: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, Failure> {
        let failure = match tokio::time::timeout(self.options.op_timeout, command).await {
            Ok(Ok(value)) => return Ok(value),
            // The connection's own response timeout.
            Ok(Err(e)) if e.is_timeout() => Failure::Timeout {
                op,
                after: self.options.op_timeout,
            },
            Ok(Err(e)) => Failure::Redis {
                op,
                source: Arc::new(e),
            },
            Err(_) => Failure::Timeout {
                op,
                after: self.options.op_timeout,
            },
        };
        bump(&self.stats.redis_errors);
        self.trip(&failure);
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

    pub(crate) async fn acquire(
        &self,
        key: &K,
        token: &str,
        force: bool,
    ) -> Result<Acquire<V>, Failure> {
        let [v, g, l] = self.keys(key);
        let lease_ms = u64::try_from(self.options.lease_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(&v)
            .key(&g)
            .key(&l)
            .arg(token)
            .arg(lease_ms)
            .arg(if force { "1" } else { "0" });
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
        let generation_ms = u64::try_from(self.options.generation_ttl.as_millis())
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

/// What the invalidation listener drives.
pub(crate) trait Listener: Send + Sync + 'static {
    /// Key type.
    type Key;
    /// Value type.
    type Value;
    /// The tier whose channel to follow.
    fn shared(&self) -> &Shared<Self::Key, Self::Value>;
    /// The subscription is (re)established: messages may have been missed.
    fn on_subscribed(&self);
    /// An invalidation message arrived.
    fn on_message(&self, payload: &[u8]) -> impl Future<Output = ()> + Send;
}

/// Follows the invalidation channel for as long as `target` lives,
/// reconnecting with backoff and detecting a silent link with pings.
pub(crate) async fn listen<T: Listener>(target: Weak<T>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(this) = target.upgrade() else { return };
        let shared = this.shared();
        let (client, channel, options, name) = (
            shared.client.clone(),
            shared.channel.clone(),
            shared.options.clone(),
            shared.name.clone(),
        );
        drop(this);

        let connected = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(options.connect_timeout, connected).await {
            Ok(Ok(pubsub)) => Some(pubsub),
            Ok(Err(error)) => {
                tracing::debug!(cache = %name, %error, "invalidation subscription failed");
                None
            }
            Err(_) => {
                tracing::debug!(cache = %name, "invalidation subscription timed out");
                None
            }
        };

        if let Some(pubsub) = pubsub {
            backoff = Duration::from_millis(50);
            let Some(this) = target.upgrade() else { return };
            this.shared().subscribed.store(true, Ordering::Relaxed);
            this.on_subscribed();
            drop(this);
            tracing::debug!(cache = %name, "invalidation subscription established");

            let (mut sink, mut stream) = pubsub.split();
            let mut ping = tokio::time::interval(SUBSCRIPTION_PING);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ping.tick().await;
            loop {
                tokio::select! {
                    message = stream.next() => {
                        let Some(message) = message else { break };
                        let Some(this) = target.upgrade() else { return };
                        this.on_message(message.get_payload_bytes()).await;
                    }
                    _ = ping.tick() => {
                        let pong = tokio::time::timeout(options.op_timeout, sink.ping::<redis::Value>()).await;
                        if !matches!(pong, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
            let Some(this) = target.upgrade() else { return };
            this.shared().subscribed.store(false, Ordering::Relaxed);
            drop(this);
            tracing::warn!(cache = %name, "invalidation subscription lost; reconnecting");
        }

        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// The next pause while polling another instance's lease.
pub(crate) fn next_poll(current: Duration) -> Duration {
    (current * 2).clamp(POLL_MIN, POLL_MAX)
}

/// The first pause while polling another instance's lease.
pub(crate) const FIRST_POLL: Duration = POLL_MIN;

/// A random lease token.
pub(crate) fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}
