//! One replica: its read-only pool and what the probes and reads last
//! said about it (banned or not, lag, replay position).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::Pool;

use crate::backend::ReplicaProbe;
use crate::metrics::ReplicaMetrics;
use crate::stats::{ReplicaStats, bump};
use crate::token::Position;

/// What a replica must show to be used: the configured lag limits, and
/// how many good probes re-admit it after a ban.
#[derive(Clone, Debug)]
pub(crate) struct ReplicaLimits {
    pub(crate) max_lag: Option<Duration>,
    pub(crate) max_lag_bytes: Option<u64>,
    pub(crate) readmit_after: u32,
}

/// One replica: its read-only pool and what the probes last said.
#[derive(Debug)]
pub(crate) struct Replica<DB: sqlx::Database> {
    pub(crate) name: String,
    pub(crate) pool: Pool<DB>,
    /// Not banned. Read without locking on every read.
    healthy: AtomicBool,
    /// Within lag limits and replicating. Read without locking.
    within_lag: AtomicBool,
    reads: AtomicU64,
    state: Mutex<ReplicaState>,
    metrics: ReplicaMetrics,
}

#[derive(Debug, Default)]
struct ReplicaState {
    bans: u64,
    probe_failures: u64,
    consecutive_ok: u32,
    replay: Option<Position>,
    lag: Option<Duration>,
    lag_bytes: Option<u64>,
    stalled: bool,
    probed_at: Option<Instant>,
    /// When the primary's position was read for the last probe that found
    /// the replica caught up with it.
    caught_up_at: Option<Instant>,
    last_error: Option<String>,
}

impl<DB: sqlx::Database> Replica<DB> {
    pub(crate) fn new(name: String, pool: Pool<DB>) -> Self {
        Self {
            pool,
            // Optimistic until the first probe says otherwise.
            healthy: AtomicBool::new(true),
            within_lag: AtomicBool::new(true),
            reads: AtomicU64::new(0),
            state: Mutex::new(ReplicaState::default()),
            metrics: ReplicaMetrics::new(&name),
            name,
        }
    }

    fn state(&self) -> MutexGuard<'_, ReplicaState> {
        // The state stays consistent field by field; a panic elsewhere
        // while holding the lock does not make it unusable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a read this replica served.
    pub(crate) fn record_read(&self) {
        bump(&self.reads);
        self.metrics.read();
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn is_within_lag(&self) -> bool {
        self.within_lag.load(Ordering::Relaxed)
    }

    /// Connections checked out of the pool right now.
    pub(crate) fn in_use(&self) -> u32 {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        self.pool.size().saturating_sub(idle)
    }

    /// Whether the pool is at its limit with nothing idle: a timeout then
    /// means "busy", not "down".
    pub(crate) fn is_saturated(&self) -> bool {
        self.pool.num_idle() == 0 && self.pool.size() >= self.pool.options().get_max_connections()
    }

    /// Whether the last replay position seen already includes `target`.
    pub(crate) fn cached_includes(&self, target: &Position) -> bool {
        self.state()
            .replay
            .as_ref()
            .is_some_and(|have| have.includes(target))
    }

    /// Lag at the last probe plus the time since that probe: an upper
    /// bound on how stale the replica's data can be now.
    pub(crate) fn staleness_bound(&self) -> Option<Duration> {
        let state = self.state();
        let lag = state.lag?;
        let since = state.probed_at?.elapsed();
        Some(lag.saturating_add(since))
    }

    /// Records a replay position seen outside a probe, if it is newer.
    pub(crate) fn note_replay(&self, position: &Position) {
        let mut state = self.state();
        let newer = match &state.replay {
            Some(old) => position.includes(old) && position != old,
            None => true,
        };
        if newer {
            state.replay = Some(position.clone());
        }
    }

    /// Records a successful probe. `primary_unknown`: the primary's
    /// position could not be read (it is down or unreachable), so the
    /// replica's time lag only says how long ago the primary last wrote;
    /// the replica then keeps its last lag verdict instead of being judged
    /// by that age (which would send reads to the primary that is down).
    ///
    /// `primary_read_at` is when the primary's position was read. A replica
    /// that was caught up at an earlier probe is at most the time since
    /// behind, whatever the age of its last replayed transaction says: after
    /// an idle spell that age is large although the replica misses at most
    /// the writes since the primary woke up.
    pub(crate) fn record_probe(
        &self,
        mut probe: ReplicaProbe,
        limits: &ReplicaLimits,
        primary_unknown: bool,
        primary_read_at: Instant,
    ) {
        let mut state = self.state();
        if probe.caught_up {
            // Everything the primary had when its position was read is
            // applied: behind by at most the time since.
            state.caught_up_at = Some(primary_read_at);
            probe.lag = Some(primary_read_at.elapsed());
        } else if let (Some(lag), Some(at)) = (probe.lag, state.caught_up_at) {
            probe.lag = Some(lag.min(at.elapsed()));
        }
        let within = !probe.stalled
            && if primary_unknown {
                self.is_within_lag()
            } else {
                match (limits.max_lag, probe.lag) {
                    (Some(max), Some(lag)) => lag <= max,
                    _ => true,
                }
            }
            && match (limits.max_lag_bytes, probe.lag_bytes) {
                (Some(max), Some(bytes)) => bytes <= max,
                _ => true,
            };
        state.replay = probe.replay;
        state.lag = probe.lag;
        state.lag_bytes = probe.lag_bytes;
        state.stalled = probe.stalled;
        state.probed_at = Some(Instant::now());
        state.consecutive_ok = state.consecutive_ok.saturating_add(1);
        if !self.is_healthy() && state.consecutive_ok >= limits.readmit_after {
            self.healthy.store(true, Ordering::Relaxed);
            self.metrics.readmitted();
            tracing::info!(replica = %self.name, "replica re-admitted after recovering");
        }
        self.metrics.probed(probe.lag, probe.lag_bytes, within);
        let was_within = self.within_lag.swap(within, Ordering::Relaxed);
        if was_within != within {
            tracing::info!(
                replica = %self.name,
                lag_ms = probe.lag.map(|l| l.as_millis() as u64),
                lag_bytes = probe.lag_bytes,
                stalled = probe.stalled,
                within_lag = within,
                "replica lag status changed"
            );
        }
    }

    /// Bans the replica (if not already banned) after a failure.
    pub(crate) fn record_failure(&self, error: String, from_probe: bool) {
        let mut state = self.state();
        if from_probe {
            state.probe_failures += 1;
            self.metrics.probe_failed();
        }
        state.consecutive_ok = 0;
        if self.healthy.swap(false, Ordering::Relaxed) {
            state.bans += 1;
            self.metrics.banned();
            tracing::warn!(replica = %self.name, %error, "replica banned");
        }
        state.last_error = Some(error);
    }

    pub(crate) fn stats(&self) -> ReplicaStats {
        let state = self.state();
        ReplicaStats {
            name: self.name.clone(),
            healthy: self.is_healthy(),
            within_lag: self.is_within_lag(),
            bans: state.bans,
            probe_failures: state.probe_failures,
            reads: self.reads.load(Ordering::Relaxed),
            lag: state.lag,
            lag_bytes: state.lag_bytes,
            replay_position: state.replay.clone(),
            stalled: state.stalled,
            last_error: state.last_error.clone(),
            in_use: self.in_use(),
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replica_seen_caught_up_is_not_judged_by_an_idle_primary() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_lazy("sqlite::memory:")
            .expect("lazy pool");
        let replica = Replica::new("replica".into(), pool);
        let limits = ReplicaLimits {
            max_lag: Some(Duration::from_secs(5)),
            max_lag_bytes: None,
            readmit_after: 1,
        };
        // The age of the last replayed transaction after ten idle minutes.
        let probe = |caught_up: bool| ReplicaProbe {
            lag: Some(if caught_up {
                Duration::ZERO
            } else {
                Duration::from_secs(600)
            }),
            caught_up,
            ..ReplicaProbe::default()
        };

        // Never seen caught up: the age is all there is to go by.
        replica.record_probe(probe(false), &limits, false, Instant::now());
        assert!(!replica.is_within_lag());

        // Caught up at one probe, a little behind at the next: at most the
        // time between the two.
        replica.record_probe(probe(true), &limits, false, Instant::now());
        assert!(replica.is_within_lag());
        replica.record_probe(probe(false), &limits, false, Instant::now());
        assert!(replica.is_within_lag());
        assert!(
            replica
                .stats()
                .lag
                .is_some_and(|lag| lag < Duration::from_secs(5))
        );

        // Caught up a minute ago and behind since: over the limit.
        let minute_ago = Instant::now() - Duration::from_secs(60);
        replica.record_probe(probe(true), &limits, false, minute_ago);
        replica.record_probe(probe(false), &limits, false, Instant::now());
        assert!(!replica.is_within_lag());
        assert!(
            replica
                .stats()
                .lag
                .is_some_and(|lag| lag >= Duration::from_secs(60))
        );
    }
}
