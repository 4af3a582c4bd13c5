//! [`RouterBuilder`]: the router's settings and the pools it builds.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Pool;
use sqlx::pool::PoolOptions;

use crate::backend::{ConnectOptionsOf, RoutedDatabase};
use crate::error::{Error, Result};
use crate::fallback::ReadFallback;
use crate::replica::Replica;
use crate::router::{Config, DbRouter, MAX_REPLICAS, Selection};

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
        let name = self.next_replica_name();
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
        let name = self.next_replica_name();
        self.replicas.push((name, ReplicaSource::Url(url.into())));
        self
    }

    /// `replica-N`, N being the replica's position.
    fn next_replica_name(&self) -> String {
        format!("replica-{}", self.replicas.len())
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
        self.config.limits.max_lag = max;
        self
    }

    /// Replicas further behind than this many WAL bytes (PostgreSQL) are not
    /// used. Default: no limit.
    pub fn with_max_lag_bytes(mut self, max: Option<u64>) -> Self {
        self.config.limits.max_lag_bytes = max;
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
        self.config.limits.readmit_after = probes.max(1);
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

        Ok(DbRouter::start(self.primary, primary_read, replicas, self.config).await)
    }
}
