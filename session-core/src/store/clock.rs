//! The clock of stored records: times kept to the millisecond.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// The current time, truncated to whole milliseconds like stored times.
///
/// Read from the system clock as milliseconds and turned into a date once
/// (it runs several times per request).
pub fn now() -> OffsetDateTime {
    let ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).ok(),
        // A clock set before 1970: truncation rounds towards zero, as
        // `unix_millis` does.
        Err(before) => i64::try_from(before.duration().as_millis())
            .ok()
            .map(|ms| -ms),
    };
    ms.and_then(from_unix_millis)
        .unwrap_or_else(|| truncate_millis(OffsetDateTime::now_utc()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_the_system_time_in_whole_milliseconds() {
        let before = truncate_millis(OffsetDateTime::now_utc());
        let now = now();
        let after = OffsetDateTime::now_utc();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
        assert_eq!(
            now.nanosecond() % 1_000_000,
            0,
            "{now} has sub-millisecond parts"
        );
        assert_eq!(from_unix_millis(unix_millis(now)), Some(now));
    }
}
