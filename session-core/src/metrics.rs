//! The metrics this crate emits through the `metrics` facade, behind the
//! `metrics` feature. Without the feature every function here is empty and
//! [`Timer`] has no fields, so nothing is measured or compiled in.
//!
//! The names, types and labels are listed in `docs/observability.md`; the
//! labels are fixed words (never a session ID).
// The names are used only when the feature is on.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

use std::time::Duration;

/// Store call latency, by `operation` and `outcome`.
pub(crate) const STORE_CALL_SECONDS: &str = "session_store_call_duration_seconds";
/// Store calls, by `operation` and `outcome`.
pub(crate) const STORE_CALLS: &str = "session_store_calls_total";
/// Store calls that did not answer within the store timeout, by `operation`.
pub(crate) const STORE_TIMEOUTS: &str = "session_store_timeouts_total";
/// Saves that lost the compare-and-set to a concurrent save.
pub(crate) const CONFLICTS: &str = "session_conflicts_total";
/// `Session::update` closures run again on reloaded data.
pub(crate) const UPDATE_REAPPLIES: &str = "session_update_reapplies_total";
/// Saves that gave up after the last attempt lost.
pub(crate) const RETRIES_EXHAUSTED: &str = "session_retries_exhausted_total";
/// Responses turned into a `503` because the store was down or slow.
pub(crate) const UNAVAILABLE: &str = "session_unavailable_responses_total";
/// Session cookies that started a fresh session instead, by `reason`.
pub(crate) const COOKIES_REJECTED: &str = "session_cookies_rejected_total";
/// Sessions given a new ID (`Session::cycle_id`).
pub(crate) const CYCLED: &str = "session_cycled_total";
/// Sessions destroyed (`Session::destroy`).
pub(crate) const DESTROYED: &str = "session_destroyed_total";
/// Store migration: sessions found in the store being left, by `outcome`.
pub(crate) const MIGRATION_READS: &str = "session_migration_old_store_reads_total";
/// `Session::get_shared` reads, by `result`.
pub(crate) const SHARED_VALUES: &str = "session_shared_value_reads_total";

/// Every metric name above, for the documentation check.
#[cfg(test)]
pub(crate) const ALL: &[&str] = &[
    STORE_CALL_SECONDS,
    STORE_CALLS,
    STORE_TIMEOUTS,
    CONFLICTS,
    UPDATE_REAPPLIES,
    RETRIES_EXHAUSTED,
    UNAVAILABLE,
    COOKIES_REJECTED,
    CYCLED,
    DESTROYED,
    MIGRATION_READS,
    SHARED_VALUES,
];

/// Measures one store call; a field-less no-op without the feature.
#[derive(Debug)]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Timer {
    #[inline]
    pub(crate) fn start() -> Self {
        Timer {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    /// Records the call `operation`, which ended with `outcome` (`ok`,
    /// `error` or `timeout`).
    #[inline]
    pub(crate) fn stop(self, operation: &'static str, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        {
            let elapsed: Duration = self.started.elapsed();
            metrics::histogram!(STORE_CALL_SECONDS, "operation" => operation, "outcome" => outcome)
                .record(elapsed);
            metrics::counter!(STORE_CALLS, "operation" => operation, "outcome" => outcome)
                .increment(1);
            if outcome == "timeout" {
                metrics::counter!(STORE_TIMEOUTS, "operation" => operation).increment(1);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (self, operation, outcome, Duration::ZERO);
    }
}

#[cfg(feature = "metrics")]
fn bump(name: &'static str) {
    metrics::counter!(name).increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
fn bump(_name: &'static str) {}

/// Adds one to the counter `name` with the label `label` = `value`.
#[cfg(feature = "metrics")]
fn bump_labelled(name: &'static str, label: &'static str, value: &'static str) {
    metrics::counter!(name, label => value).increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
fn bump_labelled(_name: &'static str, _label: &'static str, _value: &'static str) {}

/// A save lost to a concurrent save.
#[inline]
pub(crate) fn conflict() {
    bump(CONFLICTS);
}

/// An `update` closure is about to run again on reloaded data.
#[inline]
pub(crate) fn update_reapplied() {
    bump(UPDATE_REAPPLIES);
}

/// Every save attempt lost.
#[inline]
pub(crate) fn retries_exhausted() {
    bump(RETRIES_EXHAUSTED);
}

/// A session got a new ID.
#[inline]
pub(crate) fn cycled() {
    bump(CYCLED);
}

/// A session was destroyed.
#[inline]
pub(crate) fn destroyed() {
    bump(DESTROYED);
}

/// Store migration: a session was found in the store being left and
/// `served` from there (phase 1) or `moved` into the new store.
#[inline]
pub(crate) fn old_store_read(outcome: &'static str) {
    bump_labelled(MIGRATION_READS, "outcome", outcome);
}

/// A `Session::get_shared` read: `kept` (the value decoded earlier) or
/// `decoded`.
#[inline]
pub(crate) fn shared_value_read(result: &'static str) {
    bump_labelled(SHARED_VALUES, "result", result);
}

/// A `503` answered a request whose session store failed.
#[inline]
pub(crate) fn unavailable_response() {
    bump(UNAVAILABLE);
}

/// The request's session cookie started a fresh session: `malformed` (not
/// a session ID), `unknown` (no such session), `expired` or `undecodable`
/// (a stored session that does not decode).
#[inline]
pub(crate) fn cookie_rejected(reason: &'static str) {
    bump_labelled(COOKIES_REJECTED, "reason", reason);
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_follow_prometheus_conventions() {
        for name in super::ALL {
            assert!(name.starts_with("session_"), "{name}");
            assert!(
                name.ends_with("_total") || name.ends_with("_seconds"),
                "{name}"
            );
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}
