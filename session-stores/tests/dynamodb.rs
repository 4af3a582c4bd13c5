//! The DynamoDB store against a DynamoDB emulator (dynalite, from
//! `scripts/services.sh`) at `DYNAMODB_ENDPOINT` (default
//! `http://127.0.0.1:8000`). Each test uses a table of its own, so the tests
//! run in parallel; a test that cannot reach the endpoint fails and says how
//! to start it.
#![cfg(feature = "dynamodb")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use http::StatusCode;
use session_core::store::{Data, Record, now, unix_millis};
use session_core::test_suite::{TestApp, assert_no_lost_updates};
use session_core::{Error, Id, SessionLayer, SessionStore};
use session_stores::DynamoDbStore;
use test_support::START_HINT;
use test_support::dynalite::shared_endpoint as endpoint;

/// The emulator serves one request at a time: the timing-sensitive
/// conformance suite must not run while 200 concurrent updates queue up
/// there.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A client for the emulator with fixed test credentials and region, so
/// nothing is looked up on the network or the instance metadata service.
fn client_for(endpoint: &str, retry: RetryConfig) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .retry_config(retry)
        .http_client(http_client())
        .build();
    Client::from_conf(config)
}

/// Like `session_stores::dynamodb::https_client`, but dropping idle
/// connections before the emulator (a Node.js server that closes them
/// after 5 s) does, so that no request goes out on a connection being
/// closed.
fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(Duration::from_secs(2))
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn client() -> Client {
    client_for(&endpoint(), RetryConfig::standard())
}

fn table_name(test: &str) -> String {
    format!(
        "sessions-{test}-{}",
        Id::random().as_str().replace(['-', '_'], "x")
    )
}

/// A store on a fresh table named after `test`, created if missing.
async fn store_on(table: &str) -> DynamoDbStore {
    let store = DynamoDbStore::new(client()).with_table_name(table);
    store.create_table_if_missing().await.unwrap_or_else(|e| {
        panic!(
            "cannot reach DynamoDB at DYNAMODB_ENDPOINT={}: {e}; {START_HINT}",
            endpoint()
        )
    });
    store
}

async fn drop_table(table: &str) {
    let _ = client().delete_table().table_name(table).send().await;
}

fn record(data: &[(&str, serde_json::Value)], ttl: Option<Duration>) -> Record {
    let data: Data = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.into()))
        .collect();
    let now = now();
    Record::new(Id::random(), data, now, ttl.map(|t| now + t))
}

// ---- concurrent updates ----------------------------------------------------

const UPDATES: usize = 200;

fn cookie_id(cookie: &str) -> Id {
    cookie
        .split_once('=')
        .and_then(|(_, v)| Id::parse(v))
        .expect("a session cookie")
}

fn layer_for(store: Arc<dyn SessionStore>) -> SessionLayer {
    SessionLayer::new(store).with_store_timeout(Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite() {
    let _heavy = HEAVY.lock().await;
    let table = table_name("suite");
    store_on(&table).await;
    // Three instances with three clients, as three app instances would.
    session_core::test_suite::run(|| store_on(&table))
        .await
        .assert_passed();
    drop_table(&table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_all_land() {
    let _heavy = HEAVY.lock().await;
    let table = table_name("concurrent");
    let kept = assert_no_lost_updates(|| store_on(&table), UPDATES, layer_for).await;
    eprintln!("last-writer-wins kept {kept} of {UPDATES}");
    drop_table(&table).await;
}

#[tokio::test]
async fn oversized_records_are_refused_and_the_old_one_stays() {
    let table = table_name("large");
    let store = store_on(&table).await;
    let big: String = "x".repeat(420 * 1024);

    let mut r = record(
        &[("blob", big.clone().into())],
        Some(Duration::from_secs(600)),
    );
    let err = store.create(&mut r).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, limit } if size > limit && limit == 400 * 1024),
        "{err:?}"
    );
    assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        store.load(&r.id).await.unwrap().is_none(),
        "an oversized record was written"
    );

    let mut small = record(&[("k", "v".into())], Some(Duration::from_secs(600)));
    store.create(&mut small).await.unwrap();
    let mut grown = small.clone();
    grown.version += 1;
    grown
        .data
        .insert("blob".into(), serde_json::Value::from(big).into());
    let err = store.save(&grown, small.version).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert_eq!(
        store.load(&small.id).await.unwrap(),
        Some(small),
        "the previous record changed"
    );

    // Through the layer: the handler's change is refused with 413, and the
    // session keeps its data.
    let app = TestApp::new(SessionLayer::new(store.clone()), |s, i| async move {
        if i == 0 {
            s.insert("k", "v").await?;
        } else {
            s.insert("blob", "y".repeat(420 * 1024)).await?;
        }
        Ok(String::new())
    });
    let cookie = app.send(None).await.cookie.expect("cookie");
    let res = app.send_indexed(&cookie, 1).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    let kept = store
        .load(&cookie_id(&cookie))
        .await
        .unwrap()
        .expect("session kept");
    assert!(!kept.data.contains_key("blob"));
    drop_table(&table).await;
}

async fn get_item(
    store: &DynamoDbStore,
    id: &Id,
) -> std::collections::HashMap<String, AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("id", AttributeValue::S(id.as_str().to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("item")
}

fn n(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name)? {
        AttributeValue::N(n) => n.parse().ok(),
        other => panic!("{name} is {other:?}"),
    }
}

#[tokio::test]
async fn items_carry_ttl_seconds_and_exact_expiry_and_touch_changes_only_those() {
    let table = table_name("layout");
    let store = store_on(&table).await;
    let mut r = record(&[("k", "v".into())], Some(Duration::from_millis(600_500)));
    store.create(&mut r).await.unwrap();
    let at = unix_millis(r.expires_at.unwrap());
    let item = get_item(&store, &r.id).await;
    assert_eq!(n(&item, "expires_at_ms"), Some(at));
    assert_eq!(
        n(&item, "expires_at"),
        Some((at + 999) / 1000),
        "TTL seconds round up"
    );
    assert_eq!(n(&item, "v"), Some(1));

    let later = now() + Duration::from_secs(7200);
    assert!(store.touch(&r.id, Some(later)).await.unwrap());
    let touched = get_item(&store, &r.id).await;
    assert_eq!(touched.get("d"), item.get("d"), "touch rewrote the data");
    assert_eq!(touched.get("v"), item.get("v"), "touch changed the version");
    assert_eq!(touched.get("w"), item.get("w"), "touch rewrote the item");
    assert_eq!(n(&touched, "expires_at_ms"), Some(unix_millis(later)));
    assert_eq!(
        store.load(&r.id).await.unwrap().unwrap().expires_at,
        Some(later)
    );

    assert!(store.touch(&r.id, None).await.unwrap());
    let forever = get_item(&store, &r.id).await;
    assert!(!forever.contains_key("expires_at") && !forever.contains_key("expires_at_ms"));
    assert_eq!(store.load(&r.id).await.unwrap().unwrap().expires_at, None);

    // Other attribute names.
    let custom = DynamoDbStore::new(client())
        .with_table_name(table_name("names"))
        .with_key_attribute("pk")
        .with_expiry_attribute("ttl");
    custom.create_table_if_missing().await.unwrap();
    let mut r = record(&[("k", "v".into())], Some(Duration::from_secs(60)));
    custom.create(&mut r).await.unwrap();
    let item = custom
        .client()
        .get_item()
        .table_name(custom.table_name())
        .key("pk", AttributeValue::S(r.id.as_str().to_owned()))
        .send()
        .await
        .unwrap()
        .item
        .expect("item under pk");
    assert!(
        item.contains_key("ttl") && item.contains_key("ttl_ms"),
        "{item:?}"
    );
    assert_eq!(custom.load(&r.id).await.unwrap(), Some(r));
    drop_table(custom.table_name()).await;
    drop_table(&table).await;
}

#[tokio::test]
async fn expired_items_are_filtered_before_ttl_deletes_them() {
    let table = table_name("expired");
    let store = store_on(&table).await;
    let mut r = record(&[("k", "v".into())], Some(Duration::from_millis(300)));
    store.create(&mut r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The emulator never deletes it; the store must not return it, nor let
    // a save or a touch revive it.
    assert!(!get_item(&store, &r.id).await.is_empty());
    assert!(store.load(&r.id).await.unwrap().is_none());
    let mut next = r.clone();
    next.version = 2;
    next.expires_at = Some(now() + Duration::from_secs(60));
    assert!(!store.save(&next, 1).await.unwrap());
    assert!(!store.touch(&r.id, next.expires_at).await.unwrap());
    // A new session may take the ID of an expired one.
    let mut fresh = record(&[("new", true.into())], Some(Duration::from_secs(60)));
    fresh.id = r.id.clone();
    store.create(&mut fresh).await.unwrap();
    assert_eq!(fresh.id, r.id);
    assert_eq!(store.load(&r.id).await.unwrap(), Some(fresh));
    drop_table(&table).await;
}

#[tokio::test]
async fn unknown_record_format_is_a_decode_error() {
    let table = table_name("garbage");
    let store = store_on(&table).await;
    let mut r = record(&[("k", "v".into())], None);
    store.create(&mut r).await.unwrap();
    let mut bytes = r.encode().unwrap();
    bytes[0] = 0xEE;
    store
        .client()
        .update_item()
        .table_name(&table)
        .key("id", AttributeValue::S(r.id.as_str().to_owned()))
        .update_expression("SET d = :d")
        .expression_attribute_values(":d", AttributeValue::B(Blob::new(bytes)))
        .send()
        .await
        .unwrap();
    let err = store.load(&r.id).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(
        err.to_string().contains("unknown session record format"),
        "{err}"
    );

    // An item of another kind under the same key attribute.
    let id = Id::random();
    store
        .client()
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S(id.as_str().to_owned()))
        .item("v", AttributeValue::S("one".into()))
        .send()
        .await
        .unwrap();
    let err = store.load(&id).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    drop_table(&table).await;
}

#[tokio::test]
async fn unreachable_endpoint_is_a_backend_error_and_503() {
    // A port nobody listens on: bind one and let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let client = client_for(&format!("http://127.0.0.1:{port}"), RetryConfig::disabled());
    let store = DynamoDbStore::new(client).with_table_name("nowhere");
    let started = Instant::now();
    let err = store.load(&Id::random()).await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = store.create_table_if_missing().await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    let app = TestApp::new(SessionLayer::new(store), |s, _| async move {
        s.insert("k", "v").await?;
        Ok(String::new())
    });
    let res = app.send(None).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
