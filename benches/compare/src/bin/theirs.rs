//! The cart app on tower-sessions 0.14 and its stores: the same handlers'
//! logic as `ours`, written as tower-sessions documents it.
//!
//! Run with: `cargo run --release --bin theirs -- serve --store redis`
//! (from `benches/compare`); see the crate documentation.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use stateful_compare::{AddItem, CART_KEY, Cart, StoreKind, add_to_cart, cart_response, failure};
use time::Duration;
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};
use tower_sessions_cookie_store::{CookieSessionConfig, CookieSessionManagerLayer, Key};
use tower_sessions_dynamodb_store::{DynamoDBStore, DynamoDBStoreProps};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

/// Idle timeout, as `ours` (24 hours by default there).
fn expiry() -> Expiry {
    Expiry::OnInactivity(Duration::hours(24))
}

async fn get_cart(session: Session) -> Response {
    match session.get::<Cart>(CART_KEY).await {
        Ok(cart) => cart_response(&cart.unwrap_or_default()),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Read, modify, write back: the session is saved when the response is
/// produced.
async fn add_item(session: Session, Query(item): Query<AddItem>) -> Response {
    let cart = match session.get::<Cart>(CART_KEY).await {
        Ok(cart) => add_to_cart(cart, &item.sku),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    match session.insert(CART_KEY, &cart).await {
        Ok(()) => cart_response(&cart),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
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

const DYNAMODB_TABLE: &str = "tower_sessions_compare";

async fn app(store: StoreKind) -> Router {
    match store {
        StoreKind::Memory => routes().layer(
            SessionManagerLayer::new(MemoryStore::default())
                .with_secure(false)
                .with_expiry(expiry()),
        ),
        StoreKind::Cookie => routes().layer(
            CookieSessionManagerLayer::private(Key::generate()).with_config(
                CookieSessionConfig::default()
                    .with_secure(false)
                    .with_expiry(expiry()),
            ),
        ),
        StoreKind::Redis | StoreKind::RedisNear => {
            let url = stateful_compare::redis_url();
            // As the store's documentation sets it up: a pool of 6 clients.
            let pool = Pool::new(
                Config::from_url(&url).expect("REDIS_URL"),
                None,
                None,
                None,
                6,
            )
            .expect("fred pool");
            pool.init()
                .await
                .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"));
            routes().layer(
                SessionManagerLayer::new(RedisStore::new(pool))
                    .with_secure(false)
                    .with_expiry(expiry()),
            )
        }
        StoreKind::DynamoDb => {
            let client = stateful_compare::dynamodb_client().await;
            let props = DynamoDBStoreProps {
                table_name: DYNAMODB_TABLE.into(),
                ..DynamoDBStoreProps::default()
            };
            create_table(&client, &props).await;
            routes().layer(
                SessionManagerLayer::new(DynamoDBStore::new(client, props))
                    .with_secure(false)
                    .with_expiry(expiry()),
            )
        }
        StoreKind::Memcached => {
            eprintln!("tower-sessions has no Memcached store; the bench runs ours alone");
            std::process::exit(2)
        }
    }
}

/// The store leaves the table to the user: string partition key, no sort
/// key, on-demand capacity.
async fn create_table(client: &aws_sdk_dynamodb::Client, props: &DynamoDBStoreProps) {
    if client
        .describe_table()
        .table_name(&props.table_name)
        .send()
        .await
        .is_ok()
    {
        return;
    }
    let key = &props.partition_key.name;
    client
        .create_table()
        .table_name(&props.table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create the DynamoDB table: {e:?}"));
    for _ in 0..100 {
        let status = client
            .describe_table()
            .table_name(&props.table_name)
            .send()
            .await
            .ok()
            .and_then(|t| t.table?.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the DynamoDB table did not become active");
}

fn main() {
    stateful_compare::main_with("theirs", app);
}
