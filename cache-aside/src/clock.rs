//! A millisecond wall clock that costs one atomic load to read, for the
//! expiry check on every L1 hit.
//!
//! A precise clock read (`SystemTime::now`) costs 20 ns on a typical host
//! and hundreds on some virtual machines: more than a whole moka lookup.
//! So one process-wide thread, started with the first L1, samples the wall
//! clock every [`TICK`] and publishes it. A reader sees a time at most one
//! tick (plus any time that thread waits for a CPU) behind the real one, so
//! an L1 entry can be served that much past its expiry. Where the thread
//! cannot be started, readers fall back to the precise clock.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::entry;

/// How often the published time is renewed.
pub(crate) const TICK: Duration = Duration::from_millis(2);

static NOW_MS: AtomicU64 = AtomicU64::new(0);
static TICKING: AtomicBool = AtomicBool::new(false);
static START: Once = Once::new();

/// Starts the sampling thread, once per process.
pub(crate) fn start() {
    START.call_once(|| {
        NOW_MS.store(entry::now_ms(), Ordering::Relaxed);
        let ticking = std::thread::Builder::new()
            .name("cache-aside-clock".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TICK);
                    NOW_MS.store(entry::now_ms(), Ordering::Relaxed);
                }
            })
            .is_ok();
        TICKING.store(ticking, Ordering::Release);
    });
}

/// Milliseconds since the Unix epoch, at most a tick or so behind
/// [`entry::now_ms`] once [`start`] has run; exactly it before.
#[inline]
pub(crate) fn now_ms() -> u64 {
    if TICKING.load(Ordering::Acquire) {
        NOW_MS.load(Ordering::Relaxed)
    } else {
        entry::now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_within_a_few_ticks() {
        start();
        assert!(TICKING.load(Ordering::Acquire), "the clock thread runs");
        let first = now_ms();
        let precise = entry::now_ms();
        assert!(first <= precise, "never ahead: {first} > {precise}");
        assert!(precise - first < 1_000, "far behind: {first} vs {precise}");
        // It moves on by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while now_ms() < first + 50 {
            assert!(
                std::time::Instant::now() < deadline,
                "stuck at {} since {first}",
                now_ms()
            );
            std::thread::sleep(TICK);
        }
    }
}
