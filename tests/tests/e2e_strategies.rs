//! Each way of keeping a cart across instances, reproduced with real parts:
//! three shop processes behind HAProxy, driven over HTTP.

use serde_json::{Value, json};
use tests::e2e::{Balance, Haproxy, Shop};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("http client")
}

async fn add(client: &reqwest::Client, base: &str, sku: &str) -> Value {
    let res = client
        .post(format!("{base}/api/cart/items"))
        .json(&json!({ "sku": sku }))
        .send()
        .await
        .expect("add to cart");
    assert!(res.status().is_success(), "add {sku}: {}", res.status());
    res.json().await.expect("cart json")
}

async fn skus(client: &reqwest::Client, base: &str) -> Vec<String> {
    let cart: Value = client
        .get(format!("{base}/api/cart"))
        .send()
        .await
        .expect("get cart")
        .json()
        .await
        .expect("cart json");
    cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["sku"].as_str().unwrap().to_owned())
        .collect()
}

async fn three_shops(env: &[(&str, &str)]) -> Vec<Shop> {
    let mut shops = Vec::new();
    for _ in 0..3 {
        shops.push(Shop::start(SHOP, env).await);
    }
    shops
}

const SHOP: &str = env!("CARGO_BIN_EXE_e2e-shop");
const INSECURE: (&str, &str) = ("COOKIE_SECURE", "false");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_round_robin_loses_the_cart() {
    let shops = three_shops(&[("SESSION_STORE", "memory"), INSECURE]).await;
    let addrs: Vec<_> = shops.iter().map(|s| s.addr).collect();
    let lb = Haproxy::start(&addrs, Balance::RoundRobin).await;
    let client = browser();
    add(&client, &lb.url(), "SKU-0001").await;
    let mut seen = 0;
    for _ in 0..3 {
        if skus(&client, &lb.url()).await == ["SKU-0001"] {
            seen += 1;
        }
    }
    // Only the instance that holds the session shows the cart.
    assert_eq!(
        seen, 1,
        "in-process sessions should be visible on one instance of three"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_with_stickiness_survives_until_its_instance_dies() {
    let mut shops = three_shops(&[("SESSION_STORE", "memory"), INSECURE]).await;
    let addrs: Vec<_> = shops.iter().map(|s| s.addr).collect();
    let lb = Haproxy::start(&addrs, Balance::Sticky).await;
    let client = browser();
    let res = client
        .post(format!("{}/api/cart/items", lb.url()))
        .json(&json!({ "sku": "SKU-0002" }))
        .send()
        .await
        .unwrap();
    let server: usize = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("SERVERID=s"))
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .expect("haproxy's stickiness cookie");
    for _ in 0..6 {
        assert_eq!(
            skus(&client, &lb.url()).await,
            ["SKU-0002"],
            "sticky cart lost"
        );
    }
    shops[server].kill().await;
    // HAProxy moves the client to a healthy instance, which has no cart.
    assert_eq!(
        skus(&client, &lb.url()).await,
        Vec::<String>::new(),
        "the cart should be gone with its instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_store_survives_round_robin_and_instance_loss() {
    let keys = session_stores::cookie::Key::generate().to_base64();
    let mut shops = three_shops(&[
        ("SESSION_STORE", "cookie"),
        ("COOKIE_KEYS", keys.as_str()),
        INSECURE,
    ])
    .await;
    let addrs: Vec<_> = shops.iter().map(|s| s.addr).collect();
    let lb = Haproxy::start(&addrs, Balance::RoundRobin).await;
    let client = browser();
    let mut expected = Vec::new();
    for i in 0..6 {
        let sku = format!("SKU-{i:04}");
        add(&client, &lb.url(), &sku).await;
        expected.push(sku);
        assert_eq!(skus(&client, &lb.url()).await, expected);
    }
    shops[1].kill().await;
    for _ in 0..3 {
        assert_eq!(
            skus(&client, &lb.url()).await,
            expected,
            "lost with an instance"
        );
    }
    add(&client, &lb.url(), "SKU-0100").await;
    expected.push("SKU-0100".into());
    shops[1].restart().await;
    lb.wait_healthy(3).await;
    for _ in 0..3 {
        assert_eq!(
            skus(&client, &lb.url()).await,
            expected,
            "lost after a restart"
        );
    }
}
