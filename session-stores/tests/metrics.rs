//! The `metrics` feature: rejected session cookies by reason (cookie store
//! and server-side stores) and the Redis near cache's hits, misses and
//! bypasses reach the installed recorder with the documented names.
//!
//! One test function: the recorder is global to this test binary, and the
//! counts are compared before and after each step.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use session_core::store::{Data, Record, now};
use session_core::{ClientStore as _, Id, Session, SessionLayer, SessionStore as _};
use session_stores::cookie::{CookieStore, Key};
use session_stores::{MemoryStore, RedisStore};
use tower::ServiceExt as _;

const COOKIE: &str = "s";

/// The sum of the samples of `name` whose line contains every label.
fn sample(handle: &PrometheusHandle, name: &str, labels: &[&str]) -> u64 {
    handle
        .render()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        })
        .sum()
}

fn rejected(handle: &PrometheusHandle, reason: &str) -> u64 {
    sample(
        handle,
        "session_cookies_rejected_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

/// Sends one request carrying the session cookie `value` through `layer`
/// to a handler that reads the session.
async fn visit(layer: SessionLayer, value: &str) {
    async fn read(session: Session) -> Result<String, session_core::Error> {
        Ok(session.is_empty().await?.to_string())
    }
    let app = Router::new().route("/", get(read)).layer(layer);
    let req = Request::builder()
        .uri("/")
        .header("cookie", format!("{COOKIE}={value}"))
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_cookies_and_near_cache_use_are_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this binary");

    // The cookie store: garbage, a tampered seal, an expired session.
    let store = CookieStore::new(Key::generate());
    let layer = || {
        SessionLayer::client_side(store.clone())
            .with_cookie_name(COOKIE)
            .with_secure(false)
    };
    let t = now();
    let live = Record::new(
        Id::random(),
        Data::new(),
        t,
        Some(t + time::Duration::hours(1)),
    );
    let sealed = store.seal(COOKIE, &live).unwrap();
    let mut tampered: Vec<char> = sealed.chars().collect();
    tampered[20] = if tampered[20] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let old = Record::new(
        Id::random(),
        Data::new(),
        t - time::Duration::hours(2),
        Some(t - time::Duration::hours(1)),
    );
    let expired = store.seal(COOKIE, &old).unwrap();
    for (value, reason) in [
        ("!!!", "malformed"),
        (tampered.as_str(), "tampered"),
        (expired.as_str(), "expired"),
    ] {
        let before = rejected(&handle, reason);
        visit(layer(), value).await;
        assert_eq!(rejected(&handle, reason), before + 1, "{reason}");
    }
    // A good cookie is not counted.
    let before: u64 = ["malformed", "tampered", "expired"]
        .iter()
        .map(|r| rejected(&handle, r))
        .sum();
    visit(layer(), &sealed).await;
    let after: u64 = ["malformed", "tampered", "expired"]
        .iter()
        .map(|r| rejected(&handle, r))
        .sum();
    assert_eq!(after, before);

    // A server-side store: not an ID, an unknown ID.
    let memory = MemoryStore::default();
    let layer = || {
        SessionLayer::new(memory.clone())
            .with_cookie_name(COOKIE)
            .with_secure(false)
    };
    let unknown = Id::random();
    for (value, reason) in [("not-an-id", "malformed"), (unknown.as_str(), "unknown")] {
        let before = rejected(&handle, reason);
        visit(layer(), value).await;
        assert_eq!(rejected(&handle, reason), before + 1, "{reason}");
    }

    // The Redis near cache: a writer's own reads bypass it; another
    // instance misses once, then hits.
    let connect = || async {
        RedisStore::builder()
            .with_key_prefix("metrics-test:")
            .with_near_cache(100)
            .connect(&test_support::redis::shared_url())
            .await
            .unwrap_or_else(|e| panic!("the shared Redis: {e}; {}", test_support::START_HINT))
    };
    let (writer, reader) = (connect().await, connect().await);
    let mut record = Record::new(
        Id::random(),
        Data::new(),
        t,
        Some(t + time::Duration::hours(1)),
    );
    writer.create(&mut record).await.unwrap();
    let counts = || {
        (
            sample(&handle, "session_near_cache_hits_total", &[]),
            sample(&handle, "session_near_cache_misses_total", &[]),
            sample(&handle, "session_near_cache_bypasses_total", &[]),
        )
    };
    let (hits, misses, bypasses) = counts();
    assert!(writer.load(&record.id).await.unwrap().is_some());
    assert_eq!(counts(), (hits, misses, bypasses + 1), "own write bypasses");
    assert!(reader.load(&record.id).await.unwrap().is_some());
    assert_eq!(
        counts(),
        (hits, misses + 1, bypasses + 1),
        "first read misses"
    );
    assert!(reader.load(&record.id).await.unwrap().is_some());
    assert_eq!(counts(), (hits + 1, misses + 1, bypasses + 1), "then hits");
    writer.delete(&record.id).await.unwrap();
}
