//! The log-in rate limiter: failed log-ins are counted per account and per
//! client address in fixed 15-minute windows, in this process. Behind a
//! load balancer each instance counts on its own, so the fleet allows up
//! to N times the limit; a shared counter (Redis `INCR` with `EXPIRE`)
//! would make it exact.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed log-ins allowed per account in one window.
pub const LOGIN_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed log-ins allowed per client address in one window.
pub const LOGIN_FAILURES_PER_ADDRESS: u32 = 50;
/// The counting window.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Counts failed log-ins per account and per address; see the
/// [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<String, Window>,
    /// The size at which ended windows are dropped next: twice what was
    /// left after the last pruning (at least 100 000), so that many live
    /// windows cost amortised O(1) per failure, not a scan each.
    prune_at: usize,
}

impl LoginLimiter {
    fn keys(account: &str, ip: Option<IpAddr>) -> [(Option<String>, u32); 2] {
        [
            (
                Some(format!("account:{account}")),
                LOGIN_FAILURES_PER_ACCOUNT,
            ),
            (
                ip.map(|ip| format!("address:{ip}")),
                LOGIN_FAILURES_PER_ADDRESS,
            ),
        ]
    }

    /// `Err(seconds to wait)` when the account or the address used up its
    /// failures.
    pub(crate) fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (key, limit) in Self::keys(account, ip) {
            let Some(window) = key.and_then(|k| windows.by_key.get(&k).copied()) else {
                continue;
            };
            let left = LOGIN_WINDOW.saturating_sub(now.duration_since(window.started));
            if window.failures >= limit && !left.is_zero() {
                return Err(left.as_secs().max(1));
            }
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub(crate) fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if windows.by_key.len() >= windows.prune_at.max(100_000) {
            windows
                .by_key
                .retain(|_, w| now.duration_since(w.started) < LOGIN_WINDOW);
            windows.prune_at = windows.by_key.len() * 2;
        }
        for key in Self::keys(account, ip).into_iter().filter_map(|(k, _)| k) {
            let window = windows.by_key.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= LOGIN_WINDOW {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }

    /// Forgets the account's failures after a successful log-in.
    pub(crate) fn succeeded(&self, account: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.by_key.remove(&format!("account:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_an_account_after_its_failures() {
        let limiter = LoginLimiter::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT {
            assert!(limiter.check("a@x", ip).is_ok());
            limiter.failed("a@x", ip);
        }
        assert!(limiter.check("a@x", ip).is_err());
        assert!(limiter.check("b@x", ip).is_ok(), "other accounts are free");
        limiter.succeeded("a@x");
        assert!(limiter.check("a@x", ip).is_ok());
    }

    #[test]
    fn limiter_blocks_an_address_after_its_failures_over_many_accounts() {
        let limiter = LoginLimiter::default();
        let ip = Some(IpAddr::from([192, 0, 2, 7]));
        for n in 0..LOGIN_FAILURES_PER_ADDRESS {
            // A different account each time: no account reaches its limit.
            let account = format!("user{n}@x");
            assert!(limiter.check(&account, ip).is_ok(), "attempt {n}");
            limiter.failed(&account, ip);
        }
        let wait = limiter.check("fresh@x", ip).unwrap_err();
        assert!(wait > 0 && wait <= LOGIN_WINDOW.as_secs(), "{wait}");
        limiter.succeeded("user0@x");
        assert!(
            limiter.check("fresh@x", ip).is_err(),
            "a success does not reset the address"
        );
        let other = Some(IpAddr::from([192, 0, 2, 8]));
        assert!(
            limiter.check("fresh@x", other).is_ok(),
            "other addresses are free"
        );
        assert!(
            limiter.check("fresh@x", None).is_ok(),
            "no address: accounts only"
        );
    }
}
