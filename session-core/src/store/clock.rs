//! The clock of stored records: times kept to the millisecond.

use time::OffsetDateTime;

/// The current time, truncated to whole milliseconds like stored times.
pub fn now() -> OffsetDateTime {
    truncate_millis(OffsetDateTime::now_utc())
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    // In range for any date the `time` crate accepts by default.
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time `ms` milliseconds after the Unix epoch, if representable.
pub fn from_unix_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// `t` truncated to whole milliseconds.
pub(crate) fn truncate_millis(t: OffsetDateTime) -> OffsetDateTime {
    from_unix_millis(unix_millis(t)).unwrap_or(t)
}
