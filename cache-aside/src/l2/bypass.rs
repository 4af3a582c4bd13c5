//! After a Redis failure, L2 is skipped for a while, so that a dead server
//! costs one timeout, not one per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::failure::Failure;

/// When L2 may be tried again.
#[derive(Debug)]
pub(super) struct Bypass {
    /// How long L2 is skipped after a failure.
    retry_after: Duration,
    started: Instant,
    /// Milliseconds since `started` until which L2 is skipped; 0: it is not.
    down_until_ms: AtomicU64,
}

impl Bypass {
    pub(super) fn new(retry_after: Duration) -> Self {
        Self {
            retry_after,
            started: Instant::now(),
            down_until_ms: AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `Err` while L2 is being bypassed after a failure. Reads the clock only
    /// while a bypass is recorded (clock reads are slow on some hosts, and
    /// this runs on every L2 access).
    pub(super) fn check(&self) -> Result<(), Failure> {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return Ok(());
        }
        let now = self.elapsed_ms();
        if now < until {
            return Err(Failure::Unavailable {
                retry_in: Duration::from_millis(until - now),
            });
        }
        // The pause is over; clear it unless a new failure extended it.
        let _ = self
            .down_until_ms
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        Ok(())
    }

    /// Starts (or extends) a bypass after `failure`, logging its start.
    pub(super) fn trip(&self, cache: &str, failure: &Failure) {
        let now = self.elapsed_ms();
        let retry = u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX);
        // Never 0, which means "no bypass".
        let until = now.saturating_add(retry).max(1);
        let previous = self.down_until_ms.swap(until, Ordering::Relaxed);
        if previous <= now {
            tracing::warn!(
                cache = %cache,
                error = %failure,
                retry_after = ?self.retry_after,
                "redis failing; bypassing L2"
            );
        } else {
            tracing::debug!(cache = %cache, error = %failure, "redis still failing");
        }
    }
}
