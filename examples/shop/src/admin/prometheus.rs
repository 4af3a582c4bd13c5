//! The Prometheus recorder: installed once per process by the shop (the
//! libraries only use the `metrics` facade), rendered by `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, in seconds, for every `*_seconds` histogram.
const BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder as the process's `metrics` recorder, if
/// no recorder is installed yet. Call it before building the app: the
/// caches and the database router register their metrics when built.
///
/// Returns `false` if another recorder was installed first (then
/// `/metrics` shows nothing).
pub fn install_recorder() -> bool {
    if HANDLE.get().is_some() {
        return true;
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
        .expect("the buckets are not empty")
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return false;
    }
    let _ = HANDLE.set(handle);
    true
}

/// `GET /metrics`: every metric in the Prometheus text format.
pub(super) async fn render() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let body = HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
