//! Unique names, so that tests running at once (and reruns) never share a
//! table, database, key or account.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` followed by this process's ID, the time and a counter:
/// `{prefix}_{pid}_{nanos:x}_{n}`. Only letters, digits and `_` are added,
/// so the result is a valid database name when `prefix` is.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_differ() {
        assert_ne!(super::unique("a"), super::unique("a"));
        assert!(super::unique("db").starts_with("db_"));
    }
}
