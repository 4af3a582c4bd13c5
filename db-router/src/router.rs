//! The router: a primary pool, read-only pools, and the routing rules.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::{Pool, Transaction};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backend::{ConnectOptionsOf, RoutedDatabase};
use crate::error::{Error, Result};
use crate::health::{Replica, spawn_monitor};
use crate::stats::{Counters, FallbackReason, Stats, bump};
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

/// What a read does when no replica is usable (all banned, all lagging, or
/// failing).
///
/// Reads that carry a causal token the replicas have not reached always go
/// to the primary: read-your-writes is not optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadFallback {
    /// Read from the primary (through its read-only pool) and count the
    /// fallback.
    #[default]
    Primary,
    /// Fail with [`Error::NoReplicaAvailable`], to protect the primary.
    Fail,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) selection: Selection,
    pub(crate) fallback: ReadFallback,
    pub(crate) max_lag: Option<Duration>,
    pub(crate) max_lag_bytes: Option<u64>,
    pub(crate) health_interval: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) replica_acquire_timeout: Duration,
    pub(crate) readmit_after: u32,
    pub(crate) token_wait: Duration,
    pub(crate) token_poll: Duration,
    pub(crate) write_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            selection: Selection::RoundRobin,
            fallback: ReadFallback::Primary,
            max_lag: Some(Duration::from_secs(30)),
            max_lag_bytes: None,
            health_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(1),
            replica_acquire_timeout: Duration::from_secs(1),
            readmit_after: 1,
            token_wait: Duration::ZERO,
            token_poll: Duration::from_millis(10),
            write_window: Duration::from_secs(2),
        }
    }
}

pub(crate) struct Inner<DB: RoutedDatabase> {
    pub(crate) primary: Pool<DB>,
    pub(crate) primary_read: Pool<DB>,
    pub(crate) replicas: Vec<Arc<Replica<DB>>>,
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    next: AtomicUsize,
    monitor: Mutex<Option<JoinHandle<()>>>,
}

impl<DB: RoutedDatabase> Drop for Inner<DB> {
    fn drop(&mut self) {
        let monitor = self.monitor.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = monitor.take() {
            handle.abort();
        }
    }
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
    /// Starts configuring a router around the primary pool.
    ///
    /// The pool is used as it is for writes and transactions. Reads never
    /// use it: they go through read-only pools built from its connect
    /// options (or the replicas' options).
    pub fn builder(primary: Pool<DB>) -> RouterBuilder<DB> {
        RouterBuilder {
            primary,
            replicas: Vec::new(),
            read_pool_options: None,
            config: Config::default(),
        }
    }

    /// The primary pool, for writes. Counted as a write.
    pub fn writer(&self) -> &Pool<DB> {
        bump(&self.inner.counters.writes);
        &self.inner.primary
    }

    /// Starts a transaction on the primary. All of its reads and writes run
    /// there. Counted as a write.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when no connection can be acquired or `BEGIN`
    /// fails.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>> {
        bump(&self.inner.counters.writes);
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
    /// up to [`RouterBuilder::with_token_wait`]), or else from the primary.
    ///
    /// # Errors
    ///
    /// As for [`reader`](Self::reader).
    pub async fn reader_with(&self, token: Option<&CausalToken>) -> Result<PoolConnection<DB>> {
        let span = tracing::debug_span!("db_router.read", causal = token.is_some());
        async {
            let routed = self.route(token, true).await?;
            match routed.conn {
                Some(conn) => Ok(conn),
                None => Ok(routed.pool.acquire().await?),
            }
        }
        .instrument(span)
        .await
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
        let span = tracing::debug_span!("db_router.read_pool", causal = token.is_some());
        Ok(self.route(token, false).instrument(span).await?.pool)
    }

    /// The read-only pool to the primary, used for reads when no replica
    /// is usable or configured.
    pub fn primary_read_pool(&self) -> &Pool<DB> {
        &self.inner.primary_read
    }

    /// The replicas' names and read-only pools, in configuration order.
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
            Err(_) => Err(crate::Error::Timeout {
                what: "reading the primary's position after a write",
            }),
        }
    }

    /// Runs one round of health probes now instead of waiting for the
    /// monitor. Useful at startup and in tests.
    pub async fn check_health(&self) {
        if !self.inner.replicas.is_empty() {
            self.inner.check_health().await;
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
        if let Some(reason) = reason.filter(|_| self.has_replicas()) {
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
            }
            return Ok(Routed { pool, conn: None });
        }
        let mut target: Option<&Position> = None;
        if let Some(token) = token {
            bump(&inner.counters.token_reads);
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
                                bump(&inner.counters.replica_reads);
                                bump(&replica.reads);
                                let conn = acquire.then_some(conn);
                                return Ok(Routed {
                                    pool: &replica.pool,
                                    conn,
                                });
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
        let replica = &self.inner.replicas[i];
        let conn = if acquire {
            Some(self.acquire_replica(i).await?)
        } else {
            None
        };
        bump(&self.inner.counters.replica_reads);
        bump(&replica.reads);
        tracing::trace!(replica = %replica.name, "read routed to replica");
        Some(Routed {
            pool: &replica.pool,
            conn,
        })
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
                    }
                    return Ok(true);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                if waited {
                    bump(&inner.counters.token_wait_timeouts);
                }
                tracing::debug!(replica = %replica.name, %target, "replica has not reached the causal token");
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

enum ReplicaSource<DB: RoutedDatabase> {
    Options(ConnectOptionsOf<DB>),
    Url(String),
}

/// Configures a [`DbRouter`]. Made by [`DbRouter::builder`].
pub struct RouterBuilder<DB: RoutedDatabase> {
    primary: Pool<DB>,
    replicas: Vec<(String, ReplicaSource<DB>)>,
    read_pool_options: Option<PoolOptions<DB>>,
    config: Config,
}

impl<DB: RoutedDatabase> fmt::Debug for RouterBuilder<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connect options may hold passwords: only names are shown.
        let names: Vec<&str> = self.replicas.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RouterBuilder")
            .field("replicas", &names)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<DB: RoutedDatabase> RouterBuilder<DB> {
    /// Adds a replica, named `replica-N` by its position.
    pub fn with_replica(self, options: ConnectOptionsOf<DB>) -> Self {
        let name = format!("replica-{}", self.replicas.len());
        self.with_named_replica(name, options)
    }

    /// Adds a replica with a name used in stats and traces.
    pub fn with_named_replica(
        mut self,
        name: impl Into<String>,
        options: ConnectOptionsOf<DB>,
    ) -> Self {
        self.replicas
            .push((name.into(), ReplicaSource::Options(options)));
        self
    }

    /// Adds a replica by URL; a malformed URL fails [`build`](Self::build).
    pub fn with_replica_url(mut self, url: impl Into<String>) -> Self {
        let name = format!("replica-{}", self.replicas.len());
        self.replicas.push((name, ReplicaSource::Url(url.into())));
        self
    }

    /// Pool options for the read-only pools (replicas and the primary's
    /// read pool). By default they copy the primary pool's options.
    ///
    /// For MySQL the router installs its own `after_connect` (to make the
    /// session read-only), replacing one set here.
    pub fn with_read_pool_options(mut self, options: PoolOptions<DB>) -> Self {
        self.read_pool_options = Some(options);
        self
    }

    /// How a replica is chosen. Default: [`Selection::RoundRobin`].
    pub fn with_selection(mut self, selection: Selection) -> Self {
        self.config.selection = selection;
        self
    }

    /// What reads do when no replica is usable. Default:
    /// [`ReadFallback::Primary`].
    pub fn with_fallback(mut self, fallback: ReadFallback) -> Self {
        self.config.fallback = fallback;
        self
    }

    /// Replicas further behind than this (in time) are not used. `None`
    /// disables the limit. Default: 30 s.
    ///
    /// On PostgreSQL the time lag is the age of the replica's last
    /// replayed transaction, bounded by the time since a probe last found
    /// it caught up with the primary: a replica that was caught up before
    /// the primary woke from an idle spell is not taken for minutes behind.
    pub fn with_max_lag(mut self, max: Option<Duration>) -> Self {
        self.config.max_lag = max;
        self
    }

    /// Replicas further behind than this many WAL bytes (PostgreSQL) are not
    /// used. Default: no limit.
    pub fn with_max_lag_bytes(mut self, max: Option<u64>) -> Self {
        self.config.max_lag_bytes = max;
        self
    }

    /// How often replicas are probed; each wait is jittered by ±20 %.
    /// Default: 2 s.
    pub fn with_health_interval(mut self, interval: Duration) -> Self {
        self.config.health_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long one probe may take before the replica counts as failed.
    /// Default: 1 s.
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.config.probe_timeout = timeout;
        self
    }

    /// How long a read waits for a replica's pool before the replica counts
    /// as down and the read moves on. Default: 1 s.
    pub fn with_replica_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.replica_acquire_timeout = timeout;
        self
    }

    /// Consecutive successful probes needed to re-admit a banned replica.
    /// Default: 1.
    pub fn with_readmit_after(mut self, probes: u32) -> Self {
        self.config.readmit_after = probes.max(1);
        self
    }

    /// How long a read carrying a causal token may wait for the chosen
    /// replica to catch up, and how often it polls meanwhile. Default: no
    /// wait (straight to the primary), polling every 10 ms.
    pub fn with_token_wait(mut self, max_wait: Duration, poll: Duration) -> Self {
        self.config.token_wait = max_wait;
        self.config.token_poll = poll.max(Duration::from_millis(1));
        self
    }

    /// For databases without positions (SQLite, MySQL without GTID): reads
    /// carrying a token stay on the primary this long after the write, and
    /// afterwards use only replicas whose measured lag is smaller than the
    /// time since the write. Default: 2 s.
    pub fn with_write_window(mut self, window: Duration) -> Self {
        self.config.write_window = window;
        self
    }

    /// Builds the read-only pools (lazily: no connection is opened here),
    /// probes the replicas once, and starts the health monitor.
    ///
    /// Must run inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for more than [`MAX_REPLICAS`] replicas,
    /// [`Error::Database`] for a malformed replica URL.
    pub async fn build(self) -> Result<DbRouter<DB>> {
        if self.replicas.len() > MAX_REPLICAS {
            return Err(Error::Config(format!(
                "{} replicas configured, at most {MAX_REPLICAS} are supported",
                self.replicas.len()
            )));
        }
        let base = self
            .read_pool_options
            .unwrap_or_else(|| self.primary.options().clone());
        let read_options = DB::read_only_pool_options(base);

        let primary_connect = (*self.primary.connect_options()).clone();
        let primary_read = read_options
            .clone()
            .connect_lazy_with(DB::read_only_connect_options(primary_connect));

        let replica_timeout = read_options
            .get_acquire_timeout()
            .min(self.config.replica_acquire_timeout);
        let mut replicas = Vec::with_capacity(self.replicas.len());
        for (name, source) in self.replicas {
            let connect = match source {
                ReplicaSource::Options(options) => options,
                ReplicaSource::Url(url) => ConnectOptionsOf::<DB>::from_str(&url)?,
            };
            let pool = read_options
                .clone()
                .acquire_timeout(replica_timeout)
                .connect_lazy_with(DB::read_only_connect_options(connect));
            replicas.push(Arc::new(Replica::new(name, pool)));
        }

        let interval = self.config.health_interval;
        let inner = Arc::new(Inner {
            primary: self.primary,
            primary_read,
            replicas,
            config: self.config,
            counters: Counters::default(),
            next: AtomicUsize::new(0),
            monitor: Mutex::new(None),
        });
        if !inner.replicas.is_empty() {
            inner.check_health().await;
            let handle = spawn_monitor(Arc::downgrade(&inner), interval);
            *inner.monitor.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
        Ok(DbRouter { inner })
    }
}
