//! Health probes of the replicas, and the background task that runs them.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::Pool;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::backend::Backend;
use crate::replica::{Replica, ReplicaLimits};
use crate::stats::{Counters, bump};

/// Everything one round of health probes needs: the primary's read-only
/// pool (for its position), the replicas, the probe settings, and the
/// counters to record the round in.
pub(crate) struct HealthCheck<DB: Backend> {
    primary_read: Pool<DB>,
    replicas: Vec<Arc<Replica<DB>>>,
    probe_timeout: Duration,
    limits: ReplicaLimits,
    counters: Arc<Counters>,
}

impl<DB: Backend> HealthCheck<DB> {
    pub(crate) fn new(
        primary_read: Pool<DB>,
        replicas: Vec<Arc<Replica<DB>>>,
        probe_timeout: Duration,
        limits: ReplicaLimits,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            primary_read,
            replicas,
            probe_timeout,
            limits,
            counters,
        }
    }

    /// One round of probes: the primary's position, then every replica
    /// concurrently, each bounded by the probe timeout.
    pub(crate) async fn run(&self) {
        bump(&self.counters.health_checks);
        crate::metrics::health_check();
        let timeout = self.probe_timeout;
        let primary_read_at = Instant::now();
        let primary = if DB::HAS_POSITIONS {
            let pool = self.primary_read.clone();
            let probe = async move {
                let mut conn = pool.acquire().await?;
                DB::primary_position(&mut conn).await
            };
            match tokio::time::timeout(timeout, probe).await {
                Ok(Ok(position)) => position,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not read the primary's position");
                    None
                }
                Err(_) => {
                    tracing::warn!("reading the primary's position timed out");
                    None
                }
            }
        } else {
            None
        };

        let primary_unknown = DB::HAS_POSITIONS && primary.is_none();
        let mut probes = JoinSet::new();
        for replica in &self.replicas {
            let replica = Arc::clone(replica);
            let primary = primary.clone();
            probes.spawn(async move {
                let pool = replica.pool.clone();
                let probe = async move {
                    let mut conn = pool.acquire().await?;
                    DB::probe_replica(&mut conn, primary).await
                };
                let outcome = match tokio::time::timeout(timeout, probe).await {
                    Ok(Ok(report)) => Ok(report),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err(format!("health probe timed out after {timeout:?}")),
                };
                (replica, outcome)
            });
        }
        while let Some(joined) = probes.join_next().await {
            let Ok((replica, outcome)) = joined else {
                continue;
            };
            match outcome {
                Ok(report) => {
                    tracing::trace!(replica = %replica.name, ?report, "replica probed");
                    replica.record_probe(report, &self.limits, primary_unknown, primary_read_at);
                }
                Err(error) => replica.record_failure(error, true),
            }
        }
    }
}

/// The background monitor: runs a [`HealthCheck`] every interval
/// (jittered). It holds the check only weakly, stops once the check is
/// gone, and is aborted when dropped.
#[derive(Debug)]
pub(crate) struct Monitor {
    task: JoinHandle<()>,
}

impl Monitor {
    /// Starts the monitor on the current Tokio runtime.
    pub(crate) fn spawn<DB: Backend>(check: Weak<HealthCheck<DB>>, interval: Duration) -> Self {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(jittered(interval)).await;
                let Some(check) = check.upgrade() else {
                    break;
                };
                check
                    .run()
                    .instrument(tracing::debug_span!("db_router.health_check"))
                    .await;
            }
        });
        Self { task }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `interval` scaled by a random factor in [0.8, 1.2), so that many
/// routers started together do not probe in lockstep.
fn jittered(interval: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
    interval.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        let base = Duration::from_millis(1000);
        for _ in 0..1000 {
            let d = jittered(base);
            assert!(
                d >= Duration::from_millis(800) && d < Duration::from_millis(1200),
                "{d:?}"
            );
        }
    }
}
