//! The metric table of `docs/observability.md` against the names the
//! crates define (the constants of each `metrics.rs`, and of the shop's
//! `request_metrics.rs`), both ways: every metric a crate can export is
//! documented, and every documented metric exists.

use std::collections::BTreeSet;
use std::path::Path;

use e2e::metrics::documented_names;
use test_support::paths::workspace_dir;

/// Where the metric names are defined.
const SOURCES: &[&str] = &[
    "session-core/src/metrics.rs",
    "session-stores/src/metrics.rs",
    "cache-aside/src/metrics.rs",
    "db-router/src/metrics.rs",
    "examples/shop/src/request_metrics.rs",
];

/// The quoted metric names of `const NAME: &str = "…";` lines.
fn defined(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).expect("read a metrics source");
    text.lines()
        .map(str::trim)
        .filter(|l| l.contains("const ") && l.contains(": &str = \""))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_defined_metric_is_documented_and_every_documented_one_defined() {
    let root = workspace_dir();
    let defined: BTreeSet<String> = SOURCES
        .iter()
        .flat_map(|f| defined(&root.join(f)))
        .collect();
    let documented = documented_names();
    assert!(
        defined.len() >= 40,
        "too few metric names found: {defined:?}"
    );
    let undocumented: Vec<_> = defined.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&defined).collect();
    assert!(
        undocumented.is_empty(),
        "defined but not in docs/observability.md: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "in docs/observability.md but defined nowhere: {phantom:?}"
    );
}

#[test]
fn names_follow_prometheus_conventions() {
    for name in documented_names() {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name} is not snake_case"
        );
        assert!(
            name.ends_with("_total")
                || name.ends_with("_seconds")
                || name.ends_with("_bytes")
                || name.ends_with("_healthy")
                || name.ends_with("_within_lag"),
            "{name} has no unit or _total suffix"
        );
    }
}

#[test]
fn the_dashboard_uses_documented_names_only() {
    let path = workspace_dir().join("docs/grafana-dashboard.json");
    let dashboard = std::fs::read_to_string(&path).expect("read docs/grafana-dashboard.json");
    let documented = documented_names();
    let mut used = BTreeSet::new();
    let mut rest = dashboard.as_str();
    // Metric names start with one of the crates' prefixes and run on in
    // lowercase letters, digits and underscores.
    while let Some(at) = ["session_", "cache_", "db_router_", "http_server_"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        used.insert(name.to_owned());
        rest = &tail[end..];
    }
    assert!(
        used.len() >= 30,
        "the dashboard shows too few metrics: {used:?}"
    );
    let unknown: Vec<_> = used.difference(&documented).collect();
    assert!(
        unknown.is_empty(),
        "not in docs/observability.md: {unknown:?}"
    );
}
