//! What the Redis, Memcached and DynamoDB stores' spans carry: the
//! OpenTelemetry fields (`db.system`, `db.operation`, `otel.kind`,
//! `server.address`, `server.port`), and never a session ID, which is a
//! bearer secret. A session is created, bound to a user, read, given a new
//! ID and destroyed through the session layer while a layer records every
//! span and event field. The Memcached and DynamoDB tests need their
//! features too (`--all-features`).

use std::fmt;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, header};
use session_core::{Device, Session, SessionLayer, SessionStore};
use session_stores::RedisStore;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

const COOKIE: &str = "s";

/// One recorded field: the span's or event's name and target, the field
/// and its value as text.
#[derive(Debug, Clone)]
struct Field3 {
    on: String,
    target: &'static str,
    field: &'static str,
    value: String,
}

/// A layer that keeps every field of every span and event.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Field3>>>);

struct Visitor<'a> {
    into: &'a Recorded,
    on: &'a str,
    target: &'static str,
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
            target: self.target,
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
            target: attrs.metadata().target(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id);
        values.record(&mut Visitor {
            into: self,
            on: span.as_ref().map_or("?", |span| span.name()),
            target: span.as_ref().map_or("?", |span| span.metadata().target()),
        });
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        event.record(&mut Visitor {
            into: self,
            on: event.metadata().name(),
            target: event.metadata().target(),
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

/// What a session's life through the layer left in the traces: every
/// field recorded, and the session's two IDs (before and after log-in).
struct Life {
    fields: Vec<Field3>,
    ids: [String; 2],
}

impl Life {
    /// The values of `field` on the spans named `span`.
    fn on(&self, span: &str, field: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.on == span && f.field == field)
            .map(|f| f.value.clone())
            .collect()
    }

    /// Each span of `spans`, `(name, operation)`, was seen, always with
    /// `db.system = system`, `otel.kind = "client"` and that
    /// `db.operation`.
    fn assert_client_spans(&self, system: &str, spans: &[(&str, &str)]) {
        for (span, operation) in spans {
            let systems = self.on(span, "db.system");
            assert!(!systems.is_empty(), "no {span} span");
            assert!(systems.iter().all(|s| s == system), "{span}: {systems:?}");
            let kinds = self.on(span, "otel.kind");
            assert!(kinds.iter().all(|k| k == "client"), "{span}: {kinds:?}");
            assert_eq!(kinds.len(), systems.len(), "{span}: otel.kind");
            let operations = self.on(span, "db.operation");
            assert!(
                operations.iter().all(|o| o == operation),
                "{span}: {operations:?}"
            );
            assert_eq!(operations.len(), systems.len(), "{span}: db.operation");
        }
    }

    /// Every span whose name starts with `prefix` that names a server
    /// names `host` and `port`, and each of `spans` names one.
    fn assert_server(&self, prefix: &str, spans: &[&str], host: &str, port: &str) {
        for span in spans {
            assert!(
                !self.on(span, "server.address").is_empty(),
                "no {span} span with server.address"
            );
            assert!(
                !self.on(span, "server.port").is_empty(),
                "no {span} span with server.port"
            );
        }
        for f in self.fields.iter().filter(|f| f.on.starts_with(prefix)) {
            match f.field {
                "server.address" => assert_eq!(f.value, host, "{}", f.on),
                "server.port" => assert_eq!(f.value, port, "{}", f.on),
                _ => {}
            }
        }
    }

    /// No session ID, whole or as its debug prefix, under any field name,
    /// in the spans and events of this workspace's crates (the AWS SDK's
    /// own `trace` events show whole requests and responses, see
    /// docs/observability.md).
    fn assert_no_session_id(&self) {
        for id in &self.ids {
            let debug = format!("{:?}", session_core::Id::parse(id).expect("an ID"));
            let leaks: Vec<_> = self
                .fields
                .iter()
                .filter(|f| f.target.starts_with("session_"))
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
}

/// Creates a session, binds it to a user and gives it a new ID (log-in),
/// reads it, and destroys it (log-out), on `store`, recording every field
/// into `recorded`.
async fn session_life(store: impl SessionStore, recorded: &Recorded) -> Life {
    async fn login(session: Session) -> Result<(), session_core::Error> {
        session.insert("user", 1).await?;
        session.cycle_id().await?;
        session.bind_user("alice", Device::new()).await
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
    let _ = call(&app, "GET", "/", Some(&second)).await;
    let _ = call(&app, "POST", "/logout", Some(&second)).await;
    Life {
        fields: recorded.0.lock().unwrap().clone(),
        ids: [first, second],
    }
}

/// `host` and `port` of `host:port`.
fn host_port(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').expect("host:port")
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
    let life = session_life(store, &recorded).await;
    let (host, port) = host_port(url.trim_start_matches("redis://").trim_end_matches('/'));
    let spans = [
        ("redis_create", "EVALSHA"),
        ("redis_load", "GET"),
        ("redis_save", "EVALSHA"),
        ("redis_delete", "DEL"),
        ("redis_load_user_index", "HMGET"),
        ("redis_save_user_index", "EVALSHA"),
    ];
    life.assert_client_spans("redis", &spans);
    let named: Vec<_> = spans.iter().map(|(span, _)| *span).collect();
    life.assert_server("redis_", &named, host, port);
    life.assert_no_session_id();
}

#[cfg(feature = "memcached")]
#[tokio::test]
async fn memcached_spans_name_the_node_and_never_a_session_id() {
    use session_stores::MemcachedStore;
    let recorded = Recorded::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
    // One node: every command goes to it.
    let node = test_support::memcached::shared_nodes()
        .into_iter()
        .next()
        .expect("a node in MEMCACHED_URLS");
    let store = MemcachedStore::builder()
        .with_key_prefix("traces-test:")
        .connect(&node)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the shared Memcached at {node}: {e}; {}",
                test_support::START_HINT
            )
        });
    let life = session_life(store, &recorded).await;
    let spans = [
        ("memcached_connect", "mn"),
        ("memcached_create", "ms"),
        ("memcached_load", "gets"),
        ("memcached_save", "ms"),
        ("memcached_delete", "md"),
        ("memcached_load_user_index", "mg"),
        ("memcached_save_user_index", "ms"),
    ];
    life.assert_client_spans("memcached", &spans);
    let (host, port) = host_port(&node);
    let named: Vec<_> = spans.iter().map(|(span, _)| *span).collect();
    life.assert_server("memcached_", &named, host, port);
    life.assert_no_session_id();
}

#[cfg(feature = "dynamodb")]
#[tokio::test]
async fn dynamodb_spans_name_the_endpoint_and_never_a_session_id() {
    use aws_sdk_dynamodb::config::Credentials;
    use session_stores::DynamoDbStore;
    let recorded = Recorded::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
    let endpoint = test_support::dynalite::shared_endpoint();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&endpoint)
        .http_client(session_stores::dynamodb::https_client())
        .load()
        .await;
    let table = format!(
        "sessions-traces-{}",
        session_core::Id::random().as_str().replace(['-', '_'], "x")
    );
    let store = DynamoDbStore::from_sdk_config(&config).with_table_name(&table);
    store.create_table_if_missing().await.unwrap_or_else(|e| {
        panic!(
            "cannot reach DynamoDB at DYNAMODB_ENDPOINT={endpoint}: {e}; {}",
            test_support::START_HINT
        )
    });
    let life = session_life(store.clone(), &recorded).await;
    let _ = store
        .client()
        .delete_table()
        .table_name(&table)
        .send()
        .await;
    let spans = [
        ("dynamodb_create", "PutItem"),
        ("dynamodb_load", "GetItem"),
        ("dynamodb_save", "PutItem"),
        ("dynamodb_delete", "DeleteItem"),
        ("dynamodb_load_user_index", "GetItem"),
        ("dynamodb_save_user_index", "PutItem"),
    ];
    life.assert_client_spans("dynamodb", &spans);
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, rest)| rest)
        .trim_end_matches('/');
    let (host, port) = host_port(authority);
    let named: Vec<_> = spans.iter().map(|(span, _)| *span).collect();
    life.assert_server("dynamodb_", &named, host, port);
    life.assert_no_session_id();
}
