//! The router: a primary pool, read-only pools, and the routing rules.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Pool, Transaction};
use tracing::Instrument;

use crate::backend::RoutedDatabase;
use crate::error::{Error, Result};
use crate::fallback::{FallbackReason, ReadFallback};
use crate::health::{HealthCheck, Monitor};
use crate::metrics;
use crate::replica::{Replica, ReplicaLimits};
use crate::source::ReadSource;
use crate::stats::{Counters, Stats, bump};
use crate::token::{CausalToken, Position};

/// The most replicas one router can hold.
pub const MAX_REPLICAS: usize = 64;

/// Which role a piece of work needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Reads: served by a replica when one is usable, else by the primary,
    /// always on a read-only session.
    Read,
    /// Writes and transactions: always the primary.
    Write,
}

/// How a replica is chosen among the usable ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Selection {
    /// Each read takes the next replica in turn.
    #[default]
    RoundRobin,
    /// The replica with the fewest connections in use; ties go round-robin.
    LeastBusy,
}

/// The router's settings, filled in by [`RouterBuilder`](crate::RouterBuilder).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) selection: Selection,
    pub(crate) fallback: ReadFallback,
    pub(crate) limits: ReplicaLimits,
    pub(crate) health_interval: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) replica_acquire_timeout: Duration,
    pub(crate) token_wait: Duration,
    pub(crate) token_poll: Duration,
    pub(crate) write_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            selection: Selection::RoundRobin,
            fallback: ReadFallback::Primary,
            limits: ReplicaLimits {
                max_lag: Some(Duration::from_secs(30)),
                max_lag_bytes: None,
                readmit_after: 1,
            },
            health_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(1),
            replica_acquire_timeout: Duration::from_secs(1),
            token_wait: Duration::ZERO,
            token_poll: Duration::from_millis(10),
            write_window: Duration::from_secs(2),
        }
    }
}

struct Inner<DB: RoutedDatabase> {
    primary: Pool<DB>,
    primary_read: Pool<DB>,
    replicas: Vec<Arc<Replica<DB>>>,
    config: Config,
    counters: Arc<Counters>,
    next: AtomicUsize,
    health: Arc<HealthCheck<DB>>,
    /// Runs while there are replicas; aborted when the router is dropped.
    _monitor: Option<Monitor>,
}

/// Routes reads to replicas and writes to the primary.
///
/// Cheap to clone (an `Arc` inside). The background health monitor stops
/// when the last clone is dropped. See the [crate documentation](crate) for
/// an overview and an example.
pub struct DbRouter<DB: RoutedDatabase> {
    inner: Arc<Inner<DB>>,
}

impl<DB: RoutedDatabase> Clone for DbRouter<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<DB: RoutedDatabase> fmt::Debug for DbRouter<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .inner
            .replicas
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        f.debug_struct("DbRouter")
            .field("replicas", &names)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A read routed to a pool, with the connection when one was acquired.
struct Routed<'a, DB: RoutedDatabase> {
    pool: &'a Pool<DB>,
    conn: Option<PoolConnection<DB>>,
}

impl<DB: RoutedDatabase> DbRouter<DB> {
    /// Assembles a router from its pools, probes the replicas once, and
    /// starts the health monitor when there are replicas.
    pub(crate) async fn start(
        primary: Pool<DB>,
        primary_read: Pool<DB>,
        replicas: Vec<Arc<Replica<DB>>>,
        config: Config,
    ) -> Self {
        let counters = Arc::new(Counters::default());
        let health = Arc::new(HealthCheck::new(
            primary_read.clone(),
            replicas.clone(),
            config.probe_timeout,
            config.limits.clone(),
            Arc::clone(&counters),
        ));
        let monitor = if replicas.is_empty() {
            None
        } else {
            health.run().await;
            Some(Monitor::spawn(
                Arc::downgrade(&health),
                config.health_interval,
            ))
        };
        Self {
            inner: Arc::new(Inner {
                primary,
                primary_read,
                replicas,
                config,
                counters,
                next: AtomicUsize::new(0),
                health,
                _monitor: monitor,
            }),
        }
    }

    /// The primary pool, handed out for a write: every call counts one in
    /// [`Stats::writes`]. Migrations and other work that should not be
    /// counted take [`primary_pool`](Self::primary_pool).
    pub fn write_pool(&self) -> &Pool<DB> {
        bump(&self.inner.counters.writes);
        metrics::write(false);
        &self.inner.primary
    }

    /// The primary pool, without counting a write (unlike
    /// [`write_pool`](Self::write_pool)): for migrations and administration.
    pub fn primary_pool(&self) -> &Pool<DB> {
        &self.inner.primary
    }

    /// Starts a transaction on the primary. All of its reads and writes run
    /// there. Counts one in [`Stats::writes`].
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when no connection can be acquired or `BEGIN`
    /// fails.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>> {
        bump(&self.inner.counters.writes);
        metrics::write(true);
        Ok(self.inner.primary.begin().await?)
    }

    /// A read-only connection from a usable replica, or from the primary when
    /// none is usable (see [`ReadFallback`]).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the chosen pool cannot give a connection,
    /// [`Error::NoReplicaAvailable`] under [`ReadFallback::Fail`].
    pub async fn reader(&self) -> Result<PoolConnection<DB>> {
        self.reader_with(None).await
    }

    /// Like [`reader`](Self::reader), but when `token` is given the
    /// connection is guaranteed to see the write the token stands for: it
    /// comes from a replica that has replayed the token's position (waiting
    /// up to
    /// [`RouterBuilder::with_token_wait`](crate::RouterBuilder::with_token_wait)),
    /// or else from the primary.
    ///
    /// # Errors
    ///
    /// As for [`reader`](Self::reader).
    pub async fn reader_with(&self, token: Option<&CausalToken>) -> Result<PoolConnection<DB>> {
        let span = read_span::<DB>("db_router.read", token);
        async {
            let routed = self.route(token, true).await?;
            record_server(routed.pool);
            match routed.conn {
                Some(conn) => Ok(conn),
                None => Ok(routed.pool.acquire().await?),
            }
        }
        .instrument(span)
        .await
    }

    /// Like [`reader_with`](Self::reader_with), and also which server the
    /// connection comes from (to show or log where a read was served).
    ///
    /// # Errors
    ///
    /// As for [`reader`](Self::reader).
    pub async fn reader_with_source(
        &self,
        token: Option<&CausalToken>,
    ) -> Result<(PoolConnection<DB>, ReadSource)> {
        let span = read_span::<DB>("db_router.read", token);
        async {
            let routed = self.route(token, true).await?;
            record_server(routed.pool);
            let source = self.source_of(routed.pool);
            match routed.conn {
                Some(conn) => Ok((conn, source)),
                None => Ok((routed.pool.acquire().await?, source)),
            }
        }
        .instrument(span)
        .await
    }

    /// Which server `pool` (one of this router's read pools) reaches.
    pub(crate) fn source_of(&self, pool: &Pool<DB>) -> ReadSource {
        self.inner
            .replicas
            .iter()
            .find(|r| std::ptr::eq(&r.pool, pool))
            .map_or(ReadSource::Primary, |r| ReadSource::Replica(r.name.clone()))
    }

    /// The read-only pool a read with `token` should use, for handing
    /// straight to sqlx (`query.fetch_all(router.read_pool(None).await?)`).
    ///
    /// Without a token no connection is taken, so a replica that went down
    /// since the last health probe is only noticed by the query itself;
    /// [`reader`](Self::reader) notices it and falls back on the spot.
    ///
    /// # Errors
    ///
    /// As for [`reader`](Self::reader).
    pub async fn read_pool(&self, token: Option<&CausalToken>) -> Result<&Pool<DB>> {
        let span = read_span::<DB>("db_router.read_pool", token);
        let pool = self
            .route(token, false)
            .instrument(span.clone())
            .await?
            .pool;
        span.in_scope(|| record_server(pool));
        Ok(pool)
    }

    /// The read-only pool to the primary, used for reads when no replica
    /// is usable or configured. Nothing is counted.
    pub fn primary_read_pool(&self) -> &Pool<DB> {
        &self.inner.primary_read
    }

    /// The replicas' names and read-only pools, in configuration order.
    /// Nothing is counted.
    pub fn replica_pools(&self) -> impl Iterator<Item = (&str, &Pool<DB>)> + '_ {
        self.inner
            .replicas
            .iter()
            .map(|r| (r.name.as_str(), &r.pool))
    }

    /// A causal token for the writes committed so far: the primary's
    /// current position (one query, none for SQLite) and the time. Call it
    /// after the write has committed.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the primary cannot be asked.
    pub async fn write_token(&self) -> Result<CausalToken> {
        let position = if DB::HAS_POSITIONS {
            let mut conn = self.inner.primary.acquire().await?;
            DB::primary_position(&mut conn).await?
        } else {
            None
        };
        bump(&self.inner.counters.tokens_issued);
        metrics::token_issued();
        let token = CausalToken::new(position);
        tracing::debug!(token = %token, "causal token issued");
        Ok(token)
    }

    /// [`write_token`](Self::write_token) bounded by the probe timeout,
    /// for the layer after a request that wrote: when the primary is down
    /// the handler's own write has already waited for it, and the token
    /// should not add a second full pool-acquire timeout to the answer.
    pub(crate) async fn write_token_after_request(&self) -> Result<CausalToken> {
        let timeout = self.inner.config.probe_timeout;
        match tokio::time::timeout(timeout, self.write_token()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                what: "reading the primary's position after a write",
            }),
        }
    }

    /// Runs one round of health probes now instead of waiting for the
    /// monitor. Useful at startup and in tests.
    pub async fn check_health(&self) {
        if self.has_replicas() {
            self.inner.health.run().await;
        }
    }

    /// A snapshot of the counters and of each replica's state.
    pub fn stats(&self) -> Stats {
        let replicas = self.inner.replicas.iter().map(|r| r.stats()).collect();
        self.inner.counters.snapshot(replicas)
    }

    /// Whether any replica is configured.
    pub fn has_replicas(&self) -> bool {
        !self.inner.replicas.is_empty()
    }

    /// A read that must go to the primary (write requests, unknown token
    /// state).
    pub(crate) async fn primary_reader(
        &self,
        reason: Option<FallbackReason>,
    ) -> Result<PoolConnection<DB>> {
        self.primary_read_route(reason);
        Ok(self.inner.primary_read.acquire().await?)
    }

    pub(crate) fn primary_read_route(&self, reason: Option<FallbackReason>) -> &Pool<DB> {
        let counters = &self.inner.counters;
        bump(&counters.primary_reads);
        // Without replicas the primary is the plan, not a fallback.
        let reason = reason.filter(|_| self.has_replicas());
        metrics::primary_read(reason);
        if let Some(reason) = reason {
            counters.fallback(reason);
            tracing::debug!(%reason, "read falls back to the primary");
        }
        &self.inner.primary_read
    }

    fn fallback(&self, reason: FallbackReason) -> Result<Routed<'_, DB>> {
        let optional = matches!(
            reason,
            FallbackReason::ReplicasUnhealthy
                | FallbackReason::ReplicasLagging
                | FallbackReason::ReplicaError
        );
        if optional && self.inner.config.fallback == ReadFallback::Fail {
            self.inner.counters.fallback(reason);
            tracing::debug!(%reason, "no replica for this read and fallback is disabled");
            return Err(Error::NoReplicaAvailable { reason });
        }
        Ok(Routed {
            pool: self.primary_read_route(Some(reason)),
            conn: None,
        })
    }

    /// The next usable replica not yet tried, by the configured selection.
    fn next_candidate(&self, start: usize, tried: u64, seen: &mut Seen) -> Option<usize> {
        let replicas = &self.inner.replicas;
        let n = replicas.len();
        let mut best: Option<(usize, u32)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if tried & (1 << i) != 0 {
                continue;
            }
            let replica = &replicas[i];
            if !replica.is_healthy() {
                seen.unhealthy = true;
                continue;
            }
            if !replica.is_within_lag() {
                seen.lagging = true;
                continue;
            }
            match self.inner.config.selection {
                Selection::RoundRobin => return Some(i),
                Selection::LeastBusy => {
                    let busy = replica.in_use();
                    if best.is_none_or(|(_, b)| busy < b) {
                        best = Some((i, busy));
                    }
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// The routing decision for one read.
    async fn route(&self, token: Option<&CausalToken>, acquire: bool) -> Result<Routed<'_, DB>> {
        let inner = &*self.inner;
        if inner.replicas.is_empty() {
            let pool = self.primary_read_route(None);
            if token.is_some() {
                bump(&inner.counters.token_reads);
                metrics::token_read();
            }
            return Ok(Routed { pool, conn: None });
        }
        let mut target: Option<&Position> = None;
        if let Some(token) = token {
            bump(&inner.counters.token_reads);
            metrics::token_read();
            target = token.position();
            if target.is_none() && token.age() < inner.config.write_window {
                return self.fallback(FallbackReason::RecentWrite);
            }
        }

        let start = inner.next.fetch_add(1, Ordering::Relaxed);
        let mut seen = Seen::default();

        // A replica already known to have replayed the token wins outright.
        if let Some(target) = target {
            let mut tried = 0u64;
            while let Some(i) = self.next_candidate(start, tried, &mut seen) {
                tried |= 1 << i;
                if inner.replicas[i].cached_includes(target) {
                    if let Some(routed) = self.use_replica(i, acquire).await {
                        return Ok(routed);
                    }
                    seen.error = true;
                }
            }
        }

        let mut tried = 0u64;
        while let Some(i) = self.next_candidate(start, tried, &mut seen) {
            tried |= 1 << i;
            let replica = &inner.replicas[i];
            match (token, target) {
                (Some(token), None) => {
                    // No positions: the replica must be known to lag less
                    // than the time since the write.
                    if replica
                        .staleness_bound()
                        .is_some_and(|bound| token.age() <= bound)
                    {
                        seen.token_blocked = true;
                        continue;
                    }
                }
                (_, Some(target)) => {
                    match self.acquire_replica(i).await {
                        None => seen.error = true,
                        Some(mut conn) => match self.wait_for(&mut conn, i, target).await {
                            Ok(true) => {
                                return Ok(self.served_by(i, acquire.then_some(conn)));
                            }
                            Ok(false) => {
                                // Waited on the chosen replica already; the
                                // primary answers now.
                                seen.token_blocked = true;
                                break;
                            }
                            Err(error) => {
                                replica.record_failure(error.to_string(), false);
                                seen.error = true;
                            }
                        },
                    }
                    continue;
                }
                (None, None) => {}
            }
            if let Some(routed) = self.use_replica(i, acquire).await {
                return Ok(routed);
            }
            seen.error = true;
        }

        let reason = if seen.token_blocked {
            if target.is_some() {
                FallbackReason::TokenNotReached
            } else {
                FallbackReason::RecentWrite
            }
        } else if seen.error {
            FallbackReason::ReplicaError
        } else if seen.lagging {
            FallbackReason::ReplicasLagging
        } else {
            FallbackReason::ReplicasUnhealthy
        };
        self.fallback(reason)
    }

    /// Serves the read from replica `i`; `None` if it failed to give a
    /// connection.
    async fn use_replica(&self, i: usize, acquire: bool) -> Option<Routed<'_, DB>> {
        let conn = if acquire {
            Some(self.acquire_replica(i).await?)
        } else {
            None
        };
        Some(self.served_by(i, conn))
    }

    /// Counts a read served by replica `i` and routes it there.
    fn served_by(&self, i: usize, conn: Option<PoolConnection<DB>>) -> Routed<'_, DB> {
        let replica = &self.inner.replicas[i];
        bump(&self.inner.counters.replica_reads);
        replica.record_read();
        tracing::trace!(replica = %replica.name, "read routed to replica");
        Routed {
            pool: &replica.pool,
            conn,
        }
    }

    /// Acquires from replica `i`, banning it when it is down (not merely
    /// busy).
    async fn acquire_replica(&self, i: usize) -> Option<PoolConnection<DB>> {
        let replica = &self.inner.replicas[i];
        match replica.pool.acquire().await {
            Ok(conn) => Some(conn),
            Err(error) => {
                if matches!(error, sqlx::Error::PoolTimedOut) && replica.is_saturated() {
                    tracing::debug!(replica = %replica.name, "replica pool exhausted");
                } else {
                    replica.record_failure(error.to_string(), false);
                }
                None
            }
        }
    }

    /// Polls replica `i`'s replay position on `conn` until it includes
    /// `target` or the configured wait runs out.
    async fn wait_for(
        &self,
        conn: &mut PoolConnection<DB>,
        i: usize,
        target: &Position,
    ) -> Result<bool> {
        let inner = &*self.inner;
        let replica = &inner.replicas[i];
        let deadline = Instant::now() + inner.config.token_wait;
        let mut waited = false;
        loop {
            let position = DB::replay_position(conn).await?;
            if let Some(position) = &position {
                replica.note_replay(position);
                if position.includes(target) {
                    if waited {
                        bump(&inner.counters.token_wait_hits);
                        metrics::token_wait(true);
                    }
                    return Ok(true);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                if waited {
                    bump(&inner.counters.token_wait_timeouts);
                    metrics::token_wait(false);
                }
                tracing::debug!(
                    replica = %replica.name,
                    %target,
                    "replica has not reached the causal token"
                );
                return Ok(false);
            }
            if !waited {
                waited = true;
                bump(&inner.counters.token_waits);
            }
            let pause = inner.config.token_poll.min(deadline - now);
            tokio::time::sleep(pause).await;
        }
    }
}

#[derive(Default)]
struct Seen {
    unhealthy: bool,
    lagging: bool,
    error: bool,
    token_blocked: bool,
}

/// The span of a read: `name` is `db_router.read` or `db_router.read_pool`;
/// `server.address` and `server.port` are recorded once the server is
/// chosen.
fn read_span<DB: RoutedDatabase>(name: &'static str, token: Option<&CausalToken>) -> tracing::Span {
    let causal = token.is_some();
    match name {
        "db_router.read_pool" => tracing::debug_span!(
            "db_router.read_pool",
            causal,
            db.system = DB::SYSTEM,
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
        ),
        _ => tracing::debug_span!(
            "db_router.read",
            causal,
            db.system = DB::SYSTEM,
            otel.kind = "client",
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
        ),
    }
}

/// Records the server `pool` reaches on the current span, if it is
/// recorded at all.
fn record_server<DB: RoutedDatabase>(pool: &Pool<DB>) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    let options = pool.connect_options();
    if let Some((host, port)) = DB::server(&options) {
        span.record("server.address", host);
        span.record("server.port", port);
    }
}
