//! The actix-web front end end to end: the conformance suite through it on
//! Redis, a mixed fleet of axum shops and an actix-cart behind one
//! round-robin HAProxy on one Redis, and hostile cookies and bodies sent to
//! actix-cart over real HTTP.
//!
//! Needs `REDIS_URL` from `scripts/services.sh` and HAProxy; fails when
//! they are missing.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::client::ShopClient;
use http::HeaderValue;
use reqwest::StatusCode;
use serde_json::{Value, json};
use session_core::test_suite::{self, FrontEnd};
use session_stores::RedisStore;
use session_stores::cookie::Key;
use test_support::env::require_server;
use test_support::haproxy::{Balance, Haproxy};
use test_support::shop::Shop;
use test_support::tempdir::TempDir;
use test_support::{START_HINT, redis, say};

const COOKIE: &str = "shop_session";
const INSECURE: (&str, &str) = ("COOKIE_SECURE", "false");
/// Concurrent adds of distinct SKUs with one session cookie.
const CONCURRENT: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_conformance_suite_through_actix() {
    let url = redis::shared_url();
    require_server("REDIS_URL", &url).await;
    test_suite::run_through(FrontEnd::Actix, || async {
        RedisStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis at REDIS_URL={url}: {e}; {START_HINT}"))
    })
    .await
    .assert_passed();
}

/// The cart as `GET /api/cart` answers it at `base` with `cookie`.
async fn cart_at(base: &str, cookie: &str) -> Value {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/cart"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET /api/cart");
    assert_eq!(res.status(), StatusCode::OK, "{base}");
    res.json().await.expect("a JSON cart")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_fleet_of_axum_and_actix_instances_loses_no_add() {
    let url = redis::shared_url();
    require_server("REDIS_URL", &url).await;
    let data = TempDir::new("e2e-actix-fleet");
    let dir = data.path().to_string_lossy().into_owned();
    let env = [
        ("SESSION_STORE", "redis"),
        ("REDIS_URL", url.as_str()),
        ("SHOP_DATA_DIR", dir.as_str()),
        INSECURE,
    ];
    // The first shop creates the database; the others find it.
    let instances = [
        Shop::start(&env).await,
        Shop::start(&env).await,
        Shop::start_binary("actix-cart", &env).await,
    ];
    let addrs: Vec<SocketAddr> = instances.iter().map(|s| s.addr).collect();
    let lb = Haproxy::start(&addrs, Balance::RoundRobin).await;

    let client = ShopClient::new(lb.url());
    // The session first; round robin then spreads the adds over all three.
    client.add("SKU-0399").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CONCURRENT));
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let client = client.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let sku = format!("SKU-{i:04}");
                client
                    .post_json("/api/cart/items", &json!({ "sku": sku }))
                    .await
                    .0
            })
        })
        .collect();
    let mut failed = Vec::new();
    for task in tasks {
        let status = task.await.expect("an add task");
        if status != StatusCode::OK {
            failed.push(status.as_u16());
        }
    }
    assert!(failed.is_empty(), "adds failed: HTTP {failed:?}");

    // The same cart from every instance, directly and through HAProxy.
    let cookie = client.cookie_header("/api/cart");
    let through_lb = cart_at(&lb.url(), &cookie).await;
    let skus = e2e::faults::skus(&through_lb);
    let landed = (0..CONCURRENT)
        .filter(|i| skus.contains(&format!("SKU-{i:04}")))
        .count();
    say(&format!(
        "mixed fleet (2 axum + 1 actix-web, Redis): {landed} of {CONCURRENT} concurrent adds landed"
    ));
    assert_eq!(landed, CONCURRENT, "lost adds: {skus:?}");
    assert_eq!(skus.len(), CONCURRENT + 1, "one line per SKU: {skus:?}");
    assert!(skus.contains(&"SKU-0399".to_owned()), "the first add");
    for addr in &addrs {
        let direct = cart_at(&format!("http://{addr}"), &cookie).await;
        assert_eq!(direct, through_lb, "the cart read on {addr} differs");
    }
}

/// actix-cart with sessions sealed in the cookie under `key`.
async fn actix_cart_with_cookie_store(key: &Key) -> (Shop, String) {
    let keys = key.to_base64();
    let cart = Shop::start_binary(
        "actix-cart",
        &[
            ("SESSION_STORE", "cookie"),
            ("COOKIE_KEYS", keys.as_str()),
            ("DATABASE_URL", "sqlite::memory:"),
            INSECURE,
        ],
    )
    .await;
    let base = format!("http://{}", cart.addr);
    (cart, base)
}

/// `GET /api/cart` with this `Cookie` header: the status and the SKUs.
async fn skus_with(base: &str, cookie: HeaderValue) -> (StatusCode, Vec<String>) {
    let (status, skus, _) = e2e::faults::cart_with(base, COOKIE, cookie).await;
    (status, skus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_cart_never_accepts_a_tampered_cookie_nor_answers_5xx() {
    let key = Key::generate();
    let (_cart, base) = actix_cart_with_cookie_store(&key).await;
    let value = e2e::faults::cookie_after_add(&base, COOKIE, "SKU-0007").await;
    let cookie = |v: &str| HeaderValue::from_str(&format!("{COOKIE}={v}")).unwrap();
    // The control: the cookie as issued opens.
    assert_eq!(
        skus_with(&base, cookie(&value)).await,
        (StatusCode::OK, vec!["SKU-0007".to_owned()])
    );

    let raw = URL_SAFE_NO_PAD.decode(&value).expect("base64url");
    let mut variants: Vec<(String, HeaderValue)> = Vec::new();
    for i in 0..raw.len() {
        let mut bytes = raw.clone();
        bytes[i] ^= 0x01;
        variants.push((
            format!("byte {i} flipped"),
            cookie(&URL_SAFE_NO_PAD.encode(&bytes)),
        ));
    }
    for len in (0..value.len()).step_by(7) {
        variants.push((format!("truncated to {len}"), cookie(&value[..len])));
    }
    let many: String = (0..1000)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    variants.push(("1000 cookies".into(), HeaderValue::from_str(&many).unwrap()));
    variants.push(("7 KB session cookie".into(), cookie(&"A".repeat(7000))));
    variants.push((
        "100 KB session cookie".into(),
        cookie(&"A".repeat(100 * 1024)),
    ));
    variants.push((
        "non-UTF-8 session cookie".into(),
        HeaderValue::from_bytes(b"shop_session=\xff\xfe\x80").unwrap(),
    ));
    variants.push(("garbage".into(), cookie("garbage")));
    let mut bad = Vec::new();
    for (what, header) in variants {
        let (status, skus) = skus_with(&base, header).await;
        let fresh = status == StatusCode::OK && skus.is_empty();
        if !(fresh || status.is_client_error()) {
            bad.push((what, status, skus));
        }
    }
    assert!(bad.is_empty(), "accepted or 5xx: {bad:?}");

    // An oversized body gets the shop's 413, with its security headers.
    let res = reqwest::Client::new()
        .post(format!("{base}/api/cart/items"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"sku":"{}"}}"#, "x".repeat(512 * 1024)))
        .send()
        .await
        .expect("an answer, not a reset");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        res.headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
}
