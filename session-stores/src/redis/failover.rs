//! Following a primary that moves: a single-node connection that the store
//! replaces when the node it talks to is no longer the primary.
//!
//! Two ways to find the primary again:
//!
//! - **An endpoint** (such as ElastiCache's primary endpoint): a name that
//!   is pointed at the promoted replica on failover. A connection opened
//!   before the switch stays on the demoted node, which answers writes with
//!   `READONLY`. On that reply the store opens a new connection to the
//!   endpoint and checks with `ROLE` that it reached a primary.
//! - **Sentinel**: on `READONLY`, or when the connection fails or times
//!   out, the store asks the Sentinels for the master's address and, if it
//!   changed, connects there.
//!
//! After a successful reconnection the command is sent once more. Every
//! command the store sends is safe to repeat: reads and `DEL` are, and the
//! write scripts recognise their own earlier run by its write token (see
//! the [module documentation](super#layout)).

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::SentinelClient;
use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisResult, ServerErrorKind, Value,
};

/// One command or a pipeline of them, to send (and maybe send again).
#[derive(Clone, Copy)]
pub(super) enum Request<'a> {
    Cmd(&'a Cmd),
    Pipe(&'a Pipeline),
}

impl Request<'_> {
    pub(super) async fn send<T, C>(self, conn: &mut C) -> RedisResult<T>
    where
        T: FromRedisValue,
        C: ConnectionLike + Send,
    {
        match self {
            Request::Cmd(cmd) => cmd.query_async(conn).await,
            Request::Pipe(pipe) => pipe.query_async(conn).await,
        }
    }
}

/// Where a new connection to the primary comes from.
pub(super) enum Source {
    /// An address that always names the primary (after a short switch).
    Endpoint(redis::Client),
    /// Sentinels that know the current master of a name.
    Sentinel(SentinelClient),
}

/// The shortest time between two attempts to reconnect that both failed,
/// so that a burst of failing calls does not become a burst of connection
/// attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A connection to the current primary, replaced when the primary moves.
pub(super) struct Following {
    current: RwLock<Current>,
    /// Shared by the connections to the same primary that
    /// [`on_current_runtime`](Following::on_current_runtime) opens.
    reconnect: Arc<tokio::sync::Mutex<Reconnect>>,
    sentinel: bool,
}

#[derive(Clone)]
struct Current {
    /// Counts replacements, so that calls that failed together reconnect
    /// once.
    generation: u64,
    conn: ConnectionManager,
    /// Shared, so that taking the current connection per command copies
    /// no string.
    addr: Arc<str>,
}

struct Reconnect {
    source: Source,
    config: ConnectionManagerConfig,
    /// How long finding and reaching the primary may take.
    limit: Duration,
    last_failure: Option<Instant>,
}

impl fmt::Debug for Following {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("Following")
            .field("sentinel", &self.sentinel)
            .field("addr", &current.addr)
            .field("generation", &current.generation)
            .finish()
    }
}

impl Following {
    /// Connects to the primary that `source` names.
    pub(super) async fn connect(
        source: Source,
        config: ConnectionManagerConfig,
        limit: Duration,
    ) -> RedisResult<Arc<Self>> {
        let sentinel = matches!(source, Source::Sentinel(_));
        let mut reconnect = Reconnect {
            source,
            config,
            limit,
            last_failure: None,
        };
        let (conn, addr) = reconnect.open(None).await?;
        Ok(Arc::new(Following {
            current: RwLock::new(Current {
                generation: 0,
                conn,
                addr: addr.into(),
            }),
            reconnect: Arc::new(tokio::sync::Mutex::new(reconnect)),
            sentinel,
        }))
    }

    /// A connection of its own to the same primary, driven by the runtime
    /// this call runs on, that finds the primary again the same way.
    pub(super) async fn on_current_runtime(&self) -> RedisResult<Arc<Self>> {
        let (conn, addr) = self.reconnect.lock().await.open(None).await?;
        Ok(Arc::new(Following {
            current: RwLock::new(Current {
                generation: 0,
                conn,
                addr: addr.into(),
            }),
            reconnect: self.reconnect.clone(),
            sentinel: self.sentinel,
        }))
    }

    /// What the near cache of the current connection counted so far.
    #[cfg(feature = "metrics")]
    pub(super) fn cache_statistics(&self) -> Option<redis::caching::CacheStatistics> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .conn
            .get_cache_statistics()
    }

    /// The current primary's address.
    pub(super) fn addr(&self) -> Arc<str> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .addr
            .clone()
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Sends `request` to the primary; after an error that says the primary
    /// may have moved, reconnects and sends it once more.
    pub(super) async fn query<T: FromRedisValue>(&self, request: Request<'_>) -> RedisResult<T> {
        let current = self.current();
        let mut conn = current.conn.clone();
        match request.send(&mut conn).await {
            Err(err) if self.may_have_moved(&err) => {
                if !self.follow(current.generation, is_read_only(&err)).await {
                    return Err(err);
                }
                let mut conn = self.current().conn;
                request.send(&mut conn).await
            }
            other => other,
        }
    }

    /// `READONLY` always; through Sentinel also a connection that failed or
    /// did not answer, as a dead master's would.
    fn may_have_moved(&self, err: &RedisError) -> bool {
        is_read_only(err)
            || (self.sentinel
                && (err.is_io_error()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                    || err.is_timeout()))
    }

    /// Replaces the connection of `generation` with one to the primary, if
    /// it is still the current one. Returns whether the caller should try
    /// again: the connection was replaced, now or by another call.
    async fn follow(&self, generation: u64, read_only: bool) -> bool {
        let mut reconnect = self.reconnect.lock().await;
        let current = self.current();
        if current.generation != generation {
            return true;
        }
        if reconnect
            .last_failure
            .is_some_and(|at| at.elapsed() < RETRY_PAUSE)
        {
            return false;
        }
        // A connection that failed to a master Sentinel still names is
        // reconnecting by itself; only a new address or a demoted node
        // calls for a new connection.
        let keep = (!read_only).then_some(&*current.addr);
        match reconnect.open(keep).await {
            Ok((conn, addr)) => {
                tracing::warn!(from = %current.addr, to = %addr, "Redis primary moved, reconnected");
                reconnect.last_failure = None;
                let mut slot = self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *slot = Current {
                    generation: generation + 1,
                    conn,
                    addr: addr.into(),
                };
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "the Redis primary cannot be reached yet");
                reconnect.last_failure = Some(Instant::now());
                false
            }
        }
    }
}

impl Reconnect {
    /// A new connection to the primary, checked with `ROLE`. With `keep`,
    /// fails instead when the primary's address is still `keep`.
    async fn open(&mut self, keep: Option<&str>) -> RedisResult<(ConnectionManager, String)> {
        let limit = self.limit;
        match tokio::time::timeout(limit, self.open_now(keep)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from((
                ErrorKind::Io,
                "the Redis primary could not be found in time",
                format!("{limit:?}"),
            ))),
        }
    }

    async fn open_now(&mut self, keep: Option<&str>) -> RedisResult<(ConnectionManager, String)> {
        let client = match &mut self.source {
            Source::Endpoint(client) => client.clone(),
            Source::Sentinel(sentinel) => sentinel.async_get_client().await?,
        };
        let addr = client.get_connection_info().addr().to_string();
        if matches!(self.source, Source::Sentinel(_)) && keep == Some(addr.as_str()) {
            return Err(RedisError::from((
                ErrorKind::Io,
                "Sentinel still names the same master",
            )));
        }
        let mut conn = ConnectionManager::new_with_config(client, self.config.clone()).await?;
        check_primary(&mut conn).await?;
        Ok((conn, addr))
    }
}

/// Fails if the node behind `conn` says it is a replica. A user that may
/// not run `ROLE` is taken at its word.
async fn check_primary(conn: &mut ConnectionManager) -> RedisResult<()> {
    let role: RedisResult<Vec<Value>> = redis::cmd("ROLE").query_async(conn).await;
    let role = match role {
        Ok(role) => role,
        Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) => return Ok(()),
        Err(err) => return Err(err),
    };
    match role.first() {
        Some(Value::BulkString(name)) if name.as_slice() != b"master" => Err(RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "the node is not a primary",
            String::from_utf8_lossy(name).into_owned(),
        ))),
        _ => Ok(()),
    }
}

/// Whether `err` is Redis refusing a write on a replica.
pub(super) fn is_read_only(err: &RedisError) -> bool {
    err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}
