//! The metrics the router emits through the `metrics` facade, behind the
//! `metrics` feature. Without the feature every function here is empty and
//! [`ReplicaMetrics`] has no fields. Names and labels are listed in
//! `docs/observability.md`; per-replica handles are registered when the
//! router is built, so install the recorder before that.
// The names are used only when the feature is on.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

use std::time::Duration;

use crate::fallback::FallbackReason;

/// Reads, by `role` (`primary`, `replica`) and, for replicas, `replica`.
pub(crate) const READS: &str = "db_router_reads_total";
/// Reads sent to the primary although replicas are configured, by `reason`.
pub(crate) const FALLBACKS: &str = "db_router_fallbacks_total";
/// The primary handed out for writing (`write_pool`, `begin`).
pub(crate) const WRITES: &str = "db_router_writes_total";
/// Transactions started (`begin`).
pub(crate) const TRANSACTIONS: &str = "db_router_transactions_total";
/// Reads that carried a causal token.
pub(crate) const TOKEN_READS: &str = "db_router_token_reads_total";
/// Token reads that waited for a replica, by `outcome` (`caught_up`,
/// `timed_out`).
pub(crate) const TOKEN_WAITS: &str = "db_router_token_waits_total";
/// Causal tokens issued after writes.
pub(crate) const TOKENS_ISSUED: &str = "db_router_tokens_issued_total";
/// Health probe rounds.
pub(crate) const HEALTH_CHECKS: &str = "db_router_health_checks_total";
/// Replica bans, by `replica`.
pub(crate) const BANS: &str = "db_router_replica_bans_total";
/// Replicas re-admitted after a ban, by `replica`.
pub(crate) const READMISSIONS: &str = "db_router_replica_readmissions_total";
/// Failed health probes, by `replica`.
pub(crate) const PROBE_FAILURES: &str = "db_router_replica_probe_failures_total";
/// Lag in time at the last probe, by `replica`.
pub(crate) const LAG_SECONDS: &str = "db_router_replica_lag_seconds";
/// Lag in WAL bytes at the last probe (PostgreSQL), by `replica`.
pub(crate) const LAG_BYTES: &str = "db_router_replica_lag_bytes";
/// 1 while the replica is not banned, by `replica`.
pub(crate) const HEALTHY: &str = "db_router_replica_healthy";
/// 1 while the replica is within the lag limits, by `replica`.
pub(crate) const WITHIN_LAG: &str = "db_router_replica_within_lag";

#[cfg(feature = "metrics")]
fn bump(name: &'static str) {
    metrics::counter!(name).increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
fn bump(_name: &'static str) {}

/// The primary was handed out for a write; `transaction`: by `begin`.
#[inline]
pub(crate) fn write(transaction: bool) {
    bump(WRITES);
    if transaction {
        bump(TRANSACTIONS);
    }
}

/// A read went to the primary, for `reason` if it is a fallback.
#[inline]
pub(crate) fn primary_read(reason: Option<FallbackReason>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(READS, "role" => "primary").increment(1);
        if let Some(reason) = reason {
            metrics::counter!(FALLBACKS, "reason" => reason.as_str()).increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// A read carried a causal token.
#[inline]
pub(crate) fn token_read() {
    bump(TOKEN_READS);
}

/// A token wait ended: the replica `caught_up`, or the wait timed out.
#[inline]
pub(crate) fn token_wait(caught_up: bool) {
    #[cfg(feature = "metrics")]
    {
        let outcome = if caught_up { "caught_up" } else { "timed_out" };
        metrics::counter!(TOKEN_WAITS, "outcome" => outcome).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = caught_up;
}

/// A causal token was issued.
#[inline]
pub(crate) fn token_issued() {
    bump(TOKENS_ISSUED);
}

/// A round of health probes ran.
#[inline]
pub(crate) fn health_check() {
    bump(HEALTH_CHECKS);
}

/// One replica's metric handles, labelled with its name.
#[derive(Debug)]
pub(crate) struct ReplicaMetrics {
    #[cfg(feature = "metrics")]
    reads: metrics::Counter,
    #[cfg(feature = "metrics")]
    bans: metrics::Counter,
    #[cfg(feature = "metrics")]
    readmissions: metrics::Counter,
    #[cfg(feature = "metrics")]
    probe_failures: metrics::Counter,
    #[cfg(feature = "metrics")]
    lag_seconds: metrics::Gauge,
    #[cfg(feature = "metrics")]
    lag_bytes: metrics::Gauge,
    #[cfg(feature = "metrics")]
    healthy: metrics::Gauge,
    #[cfg(feature = "metrics")]
    within_lag: metrics::Gauge,
}

impl ReplicaMetrics {
    /// The handles of the replica `name`, healthy and within lag until a
    /// probe says otherwise.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(name: &str) -> Self {
        #[cfg(feature = "metrics")]
        {
            let replica = || name.to_owned();
            let metrics = ReplicaMetrics {
                reads: metrics::counter!(READS, "role" => "replica", "replica" => replica()),
                bans: metrics::counter!(BANS, "replica" => replica()),
                readmissions: metrics::counter!(READMISSIONS, "replica" => replica()),
                probe_failures: metrics::counter!(PROBE_FAILURES, "replica" => replica()),
                lag_seconds: metrics::gauge!(LAG_SECONDS, "replica" => replica()),
                lag_bytes: metrics::gauge!(LAG_BYTES, "replica" => replica()),
                healthy: metrics::gauge!(HEALTHY, "replica" => replica()),
                within_lag: metrics::gauge!(WITHIN_LAG, "replica" => replica()),
            };
            metrics.healthy.set(1.0);
            metrics.within_lag.set(1.0);
            metrics
        }
        #[cfg(not(feature = "metrics"))]
        ReplicaMetrics {}
    }

    /// The replica served a read.
    #[inline]
    pub(crate) fn read(&self) {
        #[cfg(feature = "metrics")]
        self.reads.increment(1);
    }

    /// The replica was banned.
    #[inline]
    pub(crate) fn banned(&self) {
        #[cfg(feature = "metrics")]
        {
            self.bans.increment(1);
            self.healthy.set(0.0);
        }
    }

    /// The replica was re-admitted after a ban.
    #[inline]
    pub(crate) fn readmitted(&self) {
        #[cfg(feature = "metrics")]
        {
            self.readmissions.increment(1);
            self.healthy.set(1.0);
        }
    }

    /// A health probe of the replica failed.
    #[inline]
    pub(crate) fn probe_failed(&self) {
        #[cfg(feature = "metrics")]
        self.probe_failures.increment(1);
    }

    /// A health probe measured `lag` and `lag_bytes` and found the replica
    /// `within` the limits.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn probed(&self, lag: Option<Duration>, lag_bytes: Option<u64>, within: bool) {
        #[cfg(feature = "metrics")]
        {
            if let Some(lag) = lag {
                self.lag_seconds.set(lag.as_secs_f64());
            }
            if let Some(bytes) = lag_bytes {
                self.lag_bytes.set(bytes as f64);
            }
            self.within_lag.set(if within { 1.0 } else { 0.0 });
        }
    }
}
