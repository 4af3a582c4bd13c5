//! Entries and their time stamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cached answer: `value` is `None` for a negative ("does not exist") entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry<V> {
    pub(crate) value: Option<V>,
    /// Logical expiry, in milliseconds since the Unix epoch (wall clock, so
    /// that every instance reading L2 agrees on it).
    #[cfg_attr(
        not(any(feature = "moka", feature = "redis")),
        expect(dead_code, reason = "without a tier no entry is stored")
    )]
    pub(crate) expires_at_ms: u64,
    /// How long the load that produced this entry took, for early refresh.
    #[cfg_attr(
        not(any(feature = "moka", feature = "redis")),
        expect(dead_code, reason = "without a tier no entry is stored")
    )]
    pub(crate) delta_ms: u32,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Shortens `ttl` by a random fraction of at most `jitter` (0.0–1.0), so that
/// entries filled together do not all expire together. Never returns less
/// than one millisecond.
pub(crate) fn jittered(ttl: Duration, jitter: f64) -> Duration {
    let ttl = if jitter > 0.0 {
        ttl.mul_f64(1.0 - jitter * rand::random::<f64>())
    } else {
        ttl
    };
    ttl.max(Duration::from_millis(1))
}

/// Probabilistic early expiration ("XFetch", Vattani et al.): refresh when
/// `now − delta·beta·ln(u) ≥ expiry`, `u` uniform in (0, 1]. The closer the
/// expiry and the slower the load, the likelier a refresh.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) fn should_refresh_early(beta: f64, delta_ms: u32, expires_at_ms: u64, now: u64) -> bool {
    let u = 1.0 - rand::random::<f64>();
    let gap = -f64::from(delta_ms) * beta * u.ln();
    now as f64 + gap >= expires_at_ms as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let ttl = Duration::from_secs(10);
        for _ in 0..1000 {
            let t = jittered(ttl, 0.2);
            assert!(t <= ttl && t >= Duration::from_secs(8), "{t:?}");
        }
        assert_eq!(jittered(ttl, 0.0), ttl);
    }

    #[test]
    #[cfg(any(feature = "moka", feature = "redis"))]
    fn early_refresh_depends_on_distance_to_expiry() {
        let now = 1_000_000;
        // Already expired: always refresh.
        assert!(should_refresh_early(1.0, 10, now, now));
        // A fast load one hour away from expiry: practically never.
        assert!(!(0..1000).any(|_| should_refresh_early(1.0, 10, now + 3_600_000, now)));
        // No load time recorded: never before expiry.
        assert!(!should_refresh_early(1.0, 0, now + 1, now));
    }
}
