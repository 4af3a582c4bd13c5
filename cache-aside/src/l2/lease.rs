//! The fill lease: one instance of the fleet loads a missing key while the
//! others wait for the value it stores.

use std::time::Duration;

use crate::entry::Entry;

/// Backoff bounds while polling another instance's lease.
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// The first pause while polling another instance's lease.
pub(crate) const FIRST_POLL: Duration = POLL_MIN;

/// The next pause while polling another instance's lease.
pub(crate) fn next_poll(current: Duration) -> Duration {
    (current * 2).clamp(POLL_MIN, POLL_MAX)
}

/// A random lease token.
pub(crate) fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What the lease is taken for, which decides whether a stored value counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseFor {
    /// Filling a miss: a value stored meanwhile is the answer.
    Miss,
    /// Refreshing a value early: the stored value is the one to replace, so
    /// it is ignored.
    Refresh,
}

/// What taking the lease found.
pub(crate) enum Acquire<V> {
    /// The value is there (filled by someone else meanwhile).
    Found(Entry<V>),
    /// The lease is ours; carries the generation seen when taking it.
    Acquired(String),
    /// Someone else holds the lease; carries the current generation.
    Held(String),
}
