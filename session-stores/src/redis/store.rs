//! [`RedisStore`] itself: the key of a session, and the store operations
//! as Redis commands.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::RedisError;
use session_core::store::{Record, UserIndex, now, unix_millis};
use session_core::{Error, Id, Result, SessionStore};
use time::OffsetDateTime;

use super::connection::Conn;
use super::durable::WaitReplicas;
use super::error::RedisStoreError;
use super::near_cache::NearCache;
use super::scripts::{Scripts, expiry_arg, reply_to_bool};
use super::session_value;
use super::user_index;
use crate::stored::malformed;

/// Sessions in Redis: a single node (over an auto-reconnecting connection)
/// or a Redis Cluster, with or without TLS.
///
/// Every write is one atomic Lua script, so saves are compare-and-set on
/// the version across all app instances, creates never overwrite, and
/// touches change the expiry only. Build one from a URL with
/// [`RedisStore::connect`] or from a client or connection of your own with
/// [`RedisStore::builder`]; the [module documentation](super) shows both,
/// the key layout, command counts and failure behaviour.
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
    wait: Option<WaitReplicas>,
    tokens: WriteTokens,
}

/// The write tokens of one store handle: a random prefix, then a count,
/// so that every write has a token of its own without asking the
/// operating system for random bytes each time.
struct WriteTokens {
    prefix: Id,
    next: AtomicU64,
}

impl WriteTokens {
    fn new() -> Self {
        WriteTokens {
            prefix: Id::random(),
            next: AtomicU64::new(0),
        }
    }

    /// A token no other write of any store handle has.
    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}.{n}", self.prefix.as_str())
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("mode", &self.inner.conn.mode())
            .field("prefix", &self.inner.prefix)
            .field("response_timeout", &self.inner.response_timeout)
            .field("near_cache", &self.inner.near.is_some())
            .field("wait_replicas", &self.inner.wait)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `conn`. `response_timeout` is reported by
    /// [`Error::Timeout`]; `near` is the near cache's bookkeeping when the
    /// connection has one; `wait` makes writes wait for replicas.
    pub(super) fn from_parts(
        conn: Conn,
        prefix: String,
        response_timeout: Duration,
        near: Option<NearCache>,
        wait: Option<WaitReplicas>,
    ) -> Self {
        RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix: prefix.into_boxed_str(),
                response_timeout,
                scripts: Scripts::new(),
                near,
                wait,
                tokens: WriteTokens::new(),
            }),
        }
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis key of the session `id`: `<prefix>{<id>}`.
    pub fn key(&self, id: &Id) -> String {
        // Built by hand: this runs on every request, and `format!` costs
        // several times as much.
        let (prefix, id) = (&*self.inner.prefix, id.as_str());
        let mut key = String::with_capacity(prefix.len() + id.len() + 2);
        key.push_str(prefix);
        key.push('{');
        key.push_str(id);
        key.push('}');
        key
    }

    /// Notes a write (or attempted write) of `key` for the near cache.
    fn wrote(&self, key: &str) {
        if let Some(near) = &self.inner.near {
            near.wrote(key);
        }
    }

    /// The outcome of a write script: done (`true`) or refused (`false`),
    /// and with [`with_wait_replicas`](super::RedisStoreBuilder::with_wait_replicas)
    /// an error unless enough replicas confirmed it.
    fn written(
        &self,
        op: &'static str,
        reply: redis::RedisResult<(i64, Option<i64>)>,
    ) -> Result<bool> {
        let (reply, acked) = reply.map_err(|e| self.error(op, e))?;
        let reply = match (self.inner.wait, acked) {
            (Some(wait), Some(acked)) => wait.check(op, reply, acked)?,
            _ => reply,
        };
        reply_to_bool(op, reply)
    }

    /// Counts a read's use of the near cache, if there is one: `cached`
    /// says whether the read could use it.
    fn count_near_cache(&self, cached: bool) {
        let Some(_near) = &self.inner.near else {
            return;
        };
        if !cached {
            crate::metrics::near_cache_bypassed();
        }
        #[cfg(feature = "metrics")]
        if let Some(stats) = self.inner.conn.cache_statistics() {
            _near.seen.observe(&stats);
        }
    }

    /// The record `id` stored under `key`, read with `GET` (served by
    /// the near cache when `cached`).
    async fn read(&self, id: &Id, key: &str, cached: bool) -> Result<Option<Record>> {
        let value: Option<Vec<u8>> = self
            .inner
            .conn
            .query(&session_value::read(key, cached))
            .await
            .map_err(|e| self.error("load", e))?;
        session_value::decode(id, value, now())
    }

    /// The Redis key of `user`'s session index:
    /// `<prefix>user:{<user key>}`, the user key being
    /// [`session_core::store::user_key`].
    pub fn user_index_key(&self, user: &str) -> String {
        user_index::key(&self.inner.prefix, user)
    }

    /// Records the Redis server the commands go to (`server.address`,
    /// `server.port`) on the current span, when it is recorded at all and
    /// the store knows the server (not for a cluster or a connection the
    /// application opened).
    fn record_server(&self) {
        let span = tracing::Span::current();
        if span.is_disabled() {
            return;
        }
        if let Some(addr) = self.inner.conn.server() {
            match addr
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            {
                Some((host, port)) => {
                    span.record("server.address", host);
                    span.record("server.port", port);
                }
                // A Unix socket's path.
                None => {
                    span.record("server.address", &*addr);
                }
            }
        }
    }

    fn error(&self, op: &'static str, err: RedisError) -> Error {
        if err.code() == Some("WRONGTYPE") {
            return malformed(format!(
                "a key under the session prefix {:?} holds something other than a session",
                self.inner.prefix
            ));
        }
        if err.is_timeout() {
            return Error::Timeout(self.inner.response_timeout);
        }
        Error::backend(RedisStoreError::Command { op, source: err })
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    #[tracing::instrument(name = "redis_create", level = "debug", skip_all, fields(db.system = "redis", db.operation = "EVALSHA", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.record_server();
        let data = record.encode()?;
        let version = record.version.to_string();
        let expires = expiry_arg(record.expires_at);
        let token = self.inner.tokens.next();
        let value = session_value::encode(&version, &expires, &token, &data);
        loop {
            let key = self.key(&record.id);
            self.wrote(&key);
            let now = unix_millis(now()).to_string();
            let reply = self
                .inner
                .scripts
                .create
                .run(
                    &self.inner.conn,
                    &key,
                    &[expires.as_bytes(), &value, now.as_bytes(), token.as_bytes()],
                    self.inner.wait,
                )
                .await;
            // Again once answered: the window counts from the reply.
            self.wrote(&key);
            if self.written("create", reply)? {
                return Ok(());
            }
            tracing::debug!("session ID taken, retrying with a fresh one");
            record.id = Id::random();
        }
    }

    #[tracing::instrument(name = "redis_load", level = "debug", skip_all, fields(db.system = "redis", db.operation = "GET", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.record_server();
        let key = self.key(id);
        let cached = self
            .inner
            .near
            .as_ref()
            .is_some_and(|near| !near.wrote_recently(&key));
        let record = self.read(id, &key, cached).await;
        self.count_near_cache(cached);
        let record = record?;
        if cached && record.as_ref().is_some_and(|r| r.binding.is_some()) {
            // A session bound to a user may be revoked from any instance:
            // it is read from Redis, never from a near-cache entry that an
            // invalidation could have overtaken.
            return self.read(id, &key, false).await;
        }
        Ok(record)
    }

    #[tracing::instrument(name = "redis_save", level = "debug", skip_all, fields(db.system = "redis", db.operation = "EVALSHA", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty, expected_version))]
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        self.record_server();
        let version = record.version.to_string();
        let expires = expiry_arg(record.expires_at);
        let token = self.inner.tokens.next();
        let value = session_value::encode(&version, &expires, &token, &record.encode()?);
        let key = self.key(&record.id);
        self.wrote(&key);
        let reply = self
            .inner
            .scripts
            .save
            .run(
                &self.inner.conn,
                &key,
                &[
                    expected_version.to_string().as_bytes(),
                    version.as_bytes(),
                    expires.as_bytes(),
                    &value,
                    unix_millis(now()).to_string().as_bytes(),
                    token.as_bytes(),
                ],
                self.inner.wait,
            )
            .await;
        self.wrote(&key);
        self.written("save", reply)
    }

    #[tracing::instrument(name = "redis_delete", level = "debug", skip_all, fields(db.system = "redis", db.operation = "DEL", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn delete(&self, id: &Id) -> Result<()> {
        self.record_server();
        let key = self.key(id);
        self.wrote(&key);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&key);
        let deleted: redis::RedisResult<(i64, Option<i64>)> = match self.inner.wait {
            None => self.inner.conn.query(&cmd).await.map(|n| (n, None)),
            // A delete that a failover undid would bring a session back
            // after its user logged out: it waits for the replicas too.
            Some(wait) => {
                let mut pipe = redis::pipe();
                pipe.add_command(cmd).add_command(wait.command());
                self.inner
                    .conn
                    .query_pipe::<(i64, i64)>(&pipe)
                    .await
                    .map(|(n, acked)| (n, Some(acked)))
            }
        };
        self.wrote(&key);
        let (_, acked) = deleted.map_err(|e| self.error("delete", e))?;
        if let (Some(wait), Some(acked)) = (self.inner.wait, acked) {
            // 1 for "the write happened": a delete of a missing key still
            // must not come back.
            wait.check("delete", 1, acked)?;
        }
        Ok(())
    }

    #[tracing::instrument(name = "redis_touch", level = "debug", skip_all, fields(db.system = "redis", db.operation = "EVALSHA", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.record_server();
        let key = self.key(id);
        self.wrote(&key);
        let reply = self
            .inner
            .scripts
            .touch
            .run(
                &self.inner.conn,
                &key,
                &[
                    expiry_arg(expires_at).as_bytes(),
                    unix_millis(now()).to_string().as_bytes(),
                ],
                self.inner.wait,
            )
            .await;
        self.wrote(&key);
        self.written("touch", reply)
    }

    /// A store on a connection of its own for the current runtime, when
    /// the store opened its connection itself from a URL or client (a
    /// connection or cluster connection the application passed in is
    /// shared as it is). The new connection has the same settings, near
    /// cache included (whose reads of sessions written through either
    /// connection go to Redis for the same window).
    async fn on_current_runtime(&self) -> Result<Option<Arc<dyn SessionStore>>> {
        let Conn::Following(following) = &self.inner.conn else {
            return Ok(None);
        };
        let conn = following
            .on_current_runtime()
            .await
            .map_err(|e| Error::backend(RedisStoreError::Connect(e)))?;
        let inner = &self.inner;
        Ok(Some(Arc::new(RedisStore {
            inner: Arc::new(Inner {
                conn: Conn::Following(conn),
                prefix: inner.prefix.clone(),
                response_timeout: inner.response_timeout,
                scripts: Scripts::new(),
                near: inner.near.as_ref().map(NearCache::sibling),
                wait: inner.wait,
                tokens: WriteTokens::new(),
            }),
        })))
    }

    fn supports_user_index(&self) -> bool {
        true
    }

    #[tracing::instrument(name = "redis_load_user_index", level = "debug", skip_all, fields(db.system = "redis", db.operation = "HMGET", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        self.record_server();
        let fields: Vec<Option<Vec<u8>>> = self
            .inner
            .conn
            .query(&user_index::read(&self.user_index_key(user)))
            .await
            .map_err(|e| self.error("load_user_index", e))?;
        let fields: [Option<Vec<u8>>; 3] = fields.try_into().map_err(|_| {
            Error::backend(RedisStoreError::UnexpectedReply {
                op: "HMGET",
                reply: -1,
            })
        })?;
        user_index::decode(fields, now())
    }

    #[tracing::instrument(name = "redis_save_user_index", level = "debug", skip_all, fields(db.system = "redis", db.operation = "EVALSHA", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        self.record_server();
        let expected = expected_version.map(|v| v.to_string()).unwrap_or_default();
        let reply = self
            .inner
            .scripts
            .index_save
            .run(
                &self.inner.conn,
                &self.user_index_key(user),
                &[
                    expected.as_bytes(),
                    index.version.to_string().as_bytes(),
                    expiry_arg(index.expires_at).as_bytes(),
                    &index.bytes,
                    unix_millis(now()).to_string().as_bytes(),
                ],
                self.inner.wait,
            )
            .await;
        self.written("save_user_index", reply)
    }

    #[tracing::instrument(name = "redis_delete_user_index", level = "debug", skip_all, fields(db.system = "redis", db.operation = "EVALSHA", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        self.record_server();
        let reply = self
            .inner
            .scripts
            .index_delete
            .run(
                &self.inner.conn,
                &self.user_index_key(user),
                &[
                    expected_version.to_string().as_bytes(),
                    unix_millis(now()).to_string().as_bytes(),
                ],
                self.inner.wait,
            )
            .await;
        self.written("delete_user_index", reply)
    }
}
