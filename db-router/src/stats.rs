//! Counters and a point-in-time snapshot of the router's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::fallback::FallbackReason;
use crate::token::Position;

/// Fallback counts by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fallbacks {
    counts: [u64; FallbackReason::ALL.len()],
}

impl Fallbacks {
    /// Fallbacks for one reason.
    pub fn get(&self, reason: FallbackReason) -> u64 {
        self.counts[reason.index()]
    }

    /// All fallbacks.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(reason, count)` pairs in [`FallbackReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (FallbackReason, u64)> + '_ {
        FallbackReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// A snapshot of one replica.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReplicaStats {
    /// The replica's name (given to the builder, or `replica-N`).
    pub name: String,
    /// Not banned: health probes (or the last connection) succeeded.
    pub healthy: bool,
    /// Within the configured lag limits and replicating.
    pub within_lag: bool,
    /// How many times it was banned.
    pub bans: u64,
    /// Failed health probes.
    pub probe_failures: u64,
    /// Reads it served.
    pub reads: u64,
    /// Lag in time at the last probe, when known.
    pub lag: Option<Duration>,
    /// Lag in WAL bytes at the last probe (PostgreSQL).
    pub lag_bytes: Option<u64>,
    /// The last replay position seen.
    pub replay_position: Option<Position>,
    /// Replication configured but not running (MySQL: NULL
    /// `Seconds_Behind_Master`).
    pub stalled: bool,
    /// The error of the last failed probe or connection.
    pub last_error: Option<String>,
    /// Connections of its pool in use right now.
    pub in_use: u32,
}

/// A point-in-time snapshot returned by
/// [`DbRouter::stats`](crate::DbRouter::stats).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Times the primary was handed out for writing (`write_pool()`,
    /// `begin()`); [`primary_pool()`](crate::DbRouter::primary_pool) is not
    /// counted.
    pub writes: u64,
    /// Reads served by a replica.
    pub replica_reads: u64,
    /// Reads served by the primary (its read-only pool), for whatever
    /// reason, including setups without replicas and write requests.
    pub primary_reads: u64,
    /// Reads that went to the primary although replicas are configured.
    pub fallbacks: Fallbacks,
    /// Reads that carried a causal token.
    pub token_reads: u64,
    /// Token reads that had to wait for a replica to catch up.
    pub token_waits: u64,
    /// Waits that ended with the replica caught up.
    pub token_wait_hits: u64,
    /// Waits that timed out (the read then went to the primary).
    pub token_wait_timeouts: u64,
    /// Causal tokens issued after writes.
    pub tokens_issued: u64,
    /// Health probe rounds run.
    pub health_checks: u64,
    /// One entry per replica, in configuration order.
    pub replicas: Vec<ReplicaStats>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) replica_reads: AtomicU64,
    pub(crate) primary_reads: AtomicU64,
    pub(crate) fallbacks: [AtomicU64; FallbackReason::ALL.len()],
    pub(crate) token_reads: AtomicU64,
    pub(crate) token_waits: AtomicU64,
    pub(crate) token_wait_hits: AtomicU64,
    pub(crate) token_wait_timeouts: AtomicU64,
    pub(crate) tokens_issued: AtomicU64,
    pub(crate) health_checks: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn fallback(&self, reason: FallbackReason) {
        bump(&self.fallbacks[reason.index()]);
    }

    pub(crate) fn snapshot(&self, replicas: Vec<ReplicaStats>) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut fallbacks = Fallbacks::default();
        for (slot, counter) in fallbacks.counts.iter_mut().zip(&self.fallbacks) {
            *slot = get(counter);
        }
        Stats {
            writes: get(&self.writes),
            replica_reads: get(&self.replica_reads),
            primary_reads: get(&self.primary_reads),
            fallbacks,
            token_reads: get(&self.token_reads),
            token_waits: get(&self.token_waits),
            token_wait_hits: get(&self.token_wait_hits),
            token_wait_timeouts: get(&self.token_wait_timeouts),
            tokens_issued: get(&self.tokens_issued),
            health_checks: get(&self.health_checks),
            replicas,
        }
    }
}
