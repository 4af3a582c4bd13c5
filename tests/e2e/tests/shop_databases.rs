//! The whole shop flow — sign-up, log-in, profile, cart, checkout, order —
//! on each database it supports: SQLite (in memory), PostgreSQL and
//! MariaDB. Each run migrates a database of its own (a new PostgreSQL or
//! MariaDB database, dropped afterwards), so reruns start clean.
//!
//! PostgreSQL and MariaDB come from `scripts/services.sh` (`PG_PRIMARY_URL`,
//! `MYSQL_URL`); a test whose server cannot be reached fails.

use e2e::client::ShopClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shop::{Config, app};
use sqlx::Connection as _;
use test_support::urls::with_database;
use test_support::{START_HINT, mariadb, postgres, unique};

async fn serve(database_url: &str) -> String {
    let mut config = Config::default();
    config.secure_cookie = false;
    config.database_url = Some(database_url.to_owned());
    let app = app(&config)
        .await
        .unwrap_or_else(|e| panic!("the shop does not start on {database_url}: {e}"));
    format!("http://{}", e2e::serve(app).await)
}

/// The flow every backend must pass.
async fn full_flow(base: &str) {
    let products: Value = ShopClient::new(base).get_json("/api/products").await;
    assert_eq!(products.as_array().unwrap().len(), 400, "seeded products");
    let page: Value = ShopClient::new(base).get_json("/api/products?page=2").await;
    assert_eq!(page[0]["sku"], "SKU-0080");

    let email = format!("{}@example.com", unique("flow"));
    let alice = ShopClient::new(base);
    alice.add("SKU-0007").await;
    alice
        .ok("/api/cart/items", &json!({"sku": "SKU-0009", "qty": 2}))
        .await;
    alice.signup(&email, "correct horse battery").await;
    assert_eq!(alice.skus().await, ["SKU-0007", "SKU-0009"], "cart kept");

    // A taken e-mail.
    let (status, _) = ShopClient::new(base)
        .post_json(
            "/api/signup",
            &json!({"email": email.to_uppercase(), "password": "another password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let saved = alice
        .ok(
            "/api/profile",
            &json!({"name": "Alice", "addresses": ["1 Main Street", "", "PO Box 7"]}),
        )
        .await;
    assert_eq!(saved["addresses"], json!(["1 Main Street", "PO Box 7"]));
    let profile = alice.get_json("/api/profile").await;
    assert_eq!(profile["name"], "Alice");
    assert_eq!(profile["email"], email.as_str());

    let order = alice.ok("/api/checkout", &json!({})).await;
    let id = order["id"].as_i64().expect("order id");
    assert_eq!(order["ship_to"], "1 Main Street");
    assert_eq!(alice.skus().await, Vec::<String>::new(), "cart cleared");
    let read = alice.get_json(&format!("/api/orders/{id}")).await;
    assert_eq!(read, order);
    assert_eq!(read["lines"].as_array().unwrap().len(), 2);
    let total = read["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["qty"].as_i64().unwrap() * l["price_cents"].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(read["total_cents"].as_i64(), Some(total));

    // Another browser logs in as Alice and sees the same data; a stranger
    // sees nothing.
    let again = ShopClient::new(base);
    again.login(&email, "correct horse battery").await;
    assert_eq!(again.get_json("/api/profile").await["name"], "Alice");
    let page = again
        .http
        .get(again.url("/profile"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/orders/{id}")) && page.contains("PO Box 7"),
        "{page}"
    );
    let stranger = ShopClient::new(base);
    let res = stranger
        .http
        .get(stranger.url(&format!("/api/orders/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    stranger
        .signup(
            &format!("{}@example.com", unique("stranger")),
            "password 123",
        )
        .await;
    let res = stranger
        .http
        .get(stranger.url(&format!("/api/orders/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "orders are private");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    full_flow(&serve("sqlite::memory:").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let admin_url = postgres::primary_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to PG_PRIMARY_URL={admin_url}: {e}; {START_HINT}")
        });
    let name = unique("shop_flow");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    full_flow(&serve(&with_database(&admin_url, &name)).await).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb() {
    let admin_url = mariadb::url();
    let mut admin = sqlx::MySqlConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to MYSQL_URL={admin_url}: {e}; {START_HINT}"));
    let name = unique("shop_flow");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    full_flow(&serve(&with_database(&admin_url, &name)).await).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
}
