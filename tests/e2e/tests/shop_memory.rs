//! The shop on the memory store, served over real HTTP: the cart is kept
//! per browser, concurrent adds all land, bad cookies start fresh.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop::{Config, app};

fn config() -> Config {
    let mut config = Config::default();
    // reqwest's cookie jar does not send `Secure` cookies over plain HTTP.
    config.secure_cookie = false;
    config.database_url = Some("sqlite::memory:".into());
    config
}

async fn shop(config: &Config) -> std::net::SocketAddr {
    e2e::serve(app(config).await.expect("the shop starts")).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("http client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_is_kept_per_browser() {
    let addr = shop(&config()).await;
    let alice = client();
    let bob = client();
    for (sku, qty) in [("SKU-0001", 2), ("SKU-0002", 1), ("SKU-0001", 1)] {
        let res = alice
            .post(format!("http://{addr}/api/cart/items"))
            .json(&json!({"sku": sku, "qty": qty}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let cart: Value = alice
        .get(format!("http://{addr}/api/cart"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        cart["items"],
        json!([{"sku": "SKU-0001", "qty": 3}, {"sku": "SKU-0002", "qty": 1}])
    );
    let other: Value = bob
        .get(format!("http://{addr}/api/cart"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["items"], json!([]), "carts leaked between browsers");

    let page = alice
        .get(format!("http://{addr}/cart"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Cart (4)"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_of_one_browser_all_land() {
    let addr = shop(&config()).await;
    let browser = client();
    // First request creates the session.
    browser
        .get(format!("http://{addr}/api/cart"))
        .send()
        .await
        .unwrap();
    browser
        .post(format!("http://{addr}/api/cart/items"))
        .json(&json!({"sku": "SKU-0000"}))
        .send()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 1..=100 {
        let browser = browser.clone();
        tasks.push(tokio::spawn(async move {
            browser
                .post(format!("http://{addr}/api/cart/items"))
                .json(&json!({"sku": format!("SKU-{i:04}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let cart: Value = browser
        .get(format!("http://{addr}/api/cart"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cart["items"].as_array().unwrap().len(), 101, "{cart}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cookies_start_a_fresh_session_never_an_error() {
    let addr = shop(&config()).await;
    let plain = reqwest::Client::new();
    let long = format!("shop_session={}", "x".repeat(6000));
    for cookie in [
        "shop_session=garbage",
        "shop_session=",
        "shop_session=AAAAAAAAAAAAAAAAAAAAAA",
        long.as_str(),
        "shop_session=a; shop_session=b; other=c",
    ] {
        let res = plain
            .get(format!("http://{addr}/api/cart"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "cookie {cookie:.40}");
        let cart: Value = res.json().await.unwrap();
        assert_eq!(cart["items"], json!([]));
    }
    let res = plain
        .get(format!("http://{addr}/api/cart"))
        .header(
            "cookie",
            http::HeaderValue::from_bytes(b"shop_session=\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx() {
    let addr = shop(&config()).await;
    let c = client();
    let url = format!("http://{addr}/api/cart/items");
    let unknown = c
        .post(&url)
        .json(&json!({"sku": "NOPE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let zero = c
        .post(&url)
        .json(&json!({"sku": "SKU-0001", "qty": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(zero.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let garbage = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(garbage.status().is_client_error(), "{}", garbage.status());
    let huge = c
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn extractor_without_layer_names_the_layer() {
    use axum::routing::get;
    let app = axum::Router::new().route("/", get(|_s: session_core::Session| async { "" }));
    let addr = e2e::serve(app).await;
    let res = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.text().await.unwrap().contains("SessionLayer"));
}

#[test]
fn set_cookie_has_safe_defaults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The shop keeps the library defaults apart from the name.
        let mut config = Config::default();
        config.database_url = Some("sqlite::memory:".into());
        let addr = shop(&config).await;
        let res = reqwest::Client::new()
            .post(format!("http://{addr}/api/cart/items"))
            .json(&json!({"sku": "SKU-0001"}))
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        for attr in [
            "shop_session=",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
        ] {
            assert!(cookie.contains(attr), "{attr} missing from {cookie}");
        }
    });
}
