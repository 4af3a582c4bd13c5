//! The cart app on stateful's `session-core` and `session-stores`.
//!
//! Run with: `cargo run --release --bin ours -- serve --store redis`
//! (from `benches/compare`); see the crate documentation.

use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use session_core::store::{Data, Record, Value};
use session_core::{Id, Session, SessionLayer};
use session_stores::cookie::{CookieStore, Key};
use session_stores::{DynamoDbStore, MemcachedStore, MemoryStore, RedisStore};
use stateful_compare::{AddItem, CART_KEY, Cart, StoreKind, add_to_cart, cart_response, failure};

/// A read-only handler reads the cart as a shared value: decoded once per
/// change, not once per request.
async fn get_cart(session: Session) -> Response {
    match session.get_shared::<Cart>(CART_KEY).await {
        Ok(cart) => cart_response(cart.as_deref().map_or(&[][..], Vec::as_slice)),
        Err(e) => failure(e.status(), e),
    }
}

/// Read-modify-write in one atomic `update`: re-applied on fresh data when a
/// concurrent request saved first.
async fn add_item(session: Session, Query(item): Query<AddItem>) -> Response {
    match session
        .update(CART_KEY, |cart: Option<Cart>| add_to_cart(cart, &item.sku))
        .await
    {
        Ok(cart) => cart_response(&cart),
        Err(e) => failure(e.status(), e),
    }
}

async fn seed(session: Session) -> Response {
    let cart = stateful_compare::seed_cart();
    match session.insert(CART_KEY, &cart).await {
        Ok(()) => cart_response(&cart),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn routes() -> Router {
    Router::new()
        .route("/cart", get(get_cart))
        .route("/cart/items", post(add_item))
        .route("/cart/seed", post(seed))
}

/// The size of a pre-filled session's record as the stores serialize it:
/// what the memory store's bytes per session are compared with.
fn record_bytes() -> usize {
    let cart = Value::new(&stateful_compare::seed_cart()).expect("a cart serializes");
    let data = Data::from([(CART_KEY.to_owned(), cart)]);
    let now = time::OffsetDateTime::now_utc();
    Record::new(Id::random(), data, now, Some(now))
        .encode()
        .expect("a record encodes")
        .len()
}

async fn app(store: StoreKind) -> Router {
    stateful_compare::report("record_bytes", record_bytes());
    let layer = match store {
        StoreKind::Memory => SessionLayer::new(MemoryStore::default()),
        StoreKind::Cookie => SessionLayer::client_side(CookieStore::new(Key::generate())),
        StoreKind::Redis | StoreKind::RedisNear => {
            let url = stateful_compare::redis_url();
            let near = if store == StoreKind::RedisNear {
                100_000
            } else {
                0
            };
            SessionLayer::new(
                RedisStore::builder()
                    .with_near_cache(near)
                    .connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}")),
            )
        }
        StoreKind::DynamoDb => {
            let store = DynamoDbStore::new(stateful_compare::dynamodb_client().await)
                .with_table_name("stateful_compare_sessions");
            store
                .create_table_if_missing()
                .await
                .unwrap_or_else(|e| panic!("cannot create the DynamoDB table: {e}"));
            SessionLayer::new(store)
        }
        StoreKind::Memcached => {
            let urls = stateful_compare::memcached_urls();
            SessionLayer::new(
                MemcachedStore::connect(&urls)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach Memcached at {urls}: {e}")),
            )
        }
    };
    routes().layer(layer.with_secure(false))
}

/// With the `metrics` feature, a Prometheus recorder as an app would
/// install it (no HTTP listener here: nothing scrapes during the run), with
/// its periodic upkeep.
#[cfg(feature = "metrics")]
fn install_recorder() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("install the Prometheus recorder");
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            handle.run_upkeep();
        }
    });
}

fn main() {
    #[cfg(feature = "metrics")]
    install_recorder();
    stateful_compare::report("metrics", cfg!(feature = "metrics"));
    // TLS (`rediss://`) uses rustls, whose crypto provider is the
    // application's to choose; the store never installs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    stateful_compare::main_with("ours", app);
}
