//! What the Redis store's spans carry: the OpenTelemetry fields
//! (`db.system`, `db.operation`, `server.address`, `server.port`), and
//! never a session ID, which is a bearer secret. A session is created,
//! read, given a new ID and destroyed through the session layer while a
//! layer records every span and event field.

use std::fmt;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, header};
use session_core::{Session, SessionLayer};
use session_stores::RedisStore;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

const COOKIE: &str = "s";

/// One recorded field: the span's or event's name, the field and its
/// value as text.
#[derive(Debug, Clone)]
struct Field3 {
    on: String,
    field: &'static str,
    value: String,
}

/// A layer that keeps every field of every span and event.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Field3>>>);

struct Visitor<'a> {
    into: &'a Recorded,
    on: &'a str,
}

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }
}

impl Visitor<'_> {
    fn push(&mut self, field: &Field, value: String) {
        self.into.0.lock().unwrap().push(Field3 {
            on: self.on.to_owned(),
            field: field.name(),
            value,
        });
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorded {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        attrs.record(&mut Visitor {
            into: self,
            on: attrs.metadata().name(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let name = ctx.span(id).map_or("?", |span| span.name());
        values.record(&mut Visitor {
            into: self,
            on: name,
        });
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        event.record(&mut Visitor {
            into: self,
            on: event.metadata().name(),
        });
    }
}

/// Sends `method path` with `cookie` (if any) and returns the session
/// cookie the response sets, if it sets one.
async fn call(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Option<String> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(id) = cookie {
        req = req.header(header::COOKIE, format!("{COOKIE}={id}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{method} {path}");
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            pair.strip_prefix(&format!("{COOKIE}="))
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
        })
}

// A current-thread runtime: the recording subscriber is this thread's
// default.
#[tokio::test]
async fn redis_spans_name_the_server_and_never_a_session_id() {
    let recorded = Recorded::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
    let url = test_support::redis::shared_url();
    let store = RedisStore::builder()
        .with_key_prefix("traces-test:")
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the shared Redis at {url}: {e}; {}",
                test_support::START_HINT
            )
        });
    async fn login(session: Session) -> Result<(), session_core::Error> {
        session.insert("user", 1).await?;
        session.cycle_id().await
    }
    async fn read(session: Session) -> Result<String, session_core::Error> {
        Ok(session.get::<u32>("user").await?.unwrap_or(0).to_string())
    }
    async fn logout(session: Session) -> Result<(), session_core::Error> {
        session.destroy().await
    }
    let app = Router::new()
        .route("/login", post(login))
        .route("/", get(read))
        .route("/logout", post(logout))
        .layer(
            SessionLayer::new(store)
                .with_cookie_name(COOKIE)
                .with_secure(false),
        );
    let first = call(&app, "POST", "/login", None)
        .await
        .expect("a session cookie");
    let _ = call(&app, "GET", "/", Some(&first)).await;
    let second = call(&app, "POST", "/login", Some(&first))
        .await
        .expect("a new ID");
    assert_ne!(first, second);
    let _ = call(&app, "POST", "/logout", Some(&second)).await;

    let fields = recorded.0.lock().unwrap().clone();
    let on = |span: &str, field: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|f| f.on == span && f.field == field)
            .map(|f| f.value.clone())
            .collect()
    };
    // The server, on every Redis span.
    let (host, port) = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .rsplit_once(':')
        .expect("host:port in the shared Redis URL");
    for span in ["redis_create", "redis_load", "redis_delete"] {
        let addresses = on(span, "server.address");
        assert!(!addresses.is_empty(), "no {span} span with server.address");
        assert!(addresses.iter().all(|a| a == host), "{span}: {addresses:?}");
        assert!(on(span, "server.port").iter().all(|p| p == port), "{span}");
        assert!(on(span, "db.system").iter().all(|s| s == "redis"), "{span}");
    }
    let addresses = fields
        .iter()
        .filter(|f| f.on.starts_with("redis_") && f.field == "server.address");
    assert!(addresses.clone().all(|f| f.value == host), "{fields:?}");
    // No session ID, whole or as its debug prefix, under any field name.
    for id in [&first, &second] {
        let debug = format!("{:?}", session_core::Id::parse(id).expect("an ID"));
        let leaks: Vec<_> = fields
            .iter()
            .filter(|f| {
                f.field == "id"
                    || f.field.contains("session")
                    || f.value.contains(id.as_str())
                    || f.value.contains(&debug)
            })
            .collect();
        assert!(leaks.is_empty(), "a session ID in traces: {leaks:?}");
    }
}
