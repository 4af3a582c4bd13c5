//! The actix-web front end end to end: the conformance suite through it on
//! Redis; a mixed fleet of axum shops and an actix-cart behind one
//! round-robin HAProxy, on one Redis and then on DynamoDB; and the answers
//! both front ends give before any handler runs (a path they do not
//! serve, a body too large), compared byte for byte over real HTTP.
//! Hostile cookies through both front ends are in `faults_tamper.rs`.
//!
//! Needs `REDIS_URL` and `DYNAMODB_ENDPOINT` (with `AWS_*`) from
//! `scripts/services.sh`, and HAProxy; fails when they are missing.

use std::net::SocketAddr;

use axum::body::Bytes;
use e2e::client::ShopClient;
use http_body_util::{BodyExt as _, Full};
use reqwest::StatusCode;
use serde_json::{Value, json};
use session_core::test_suite::{self, FrontEnd};
use session_stores::RedisStore;
use test_support::env::require_server;
use test_support::haproxy::{Balance, Haproxy};
use test_support::shop::Shop;
use test_support::tempdir::TempDir;
use test_support::{START_HINT, dynalite, redis, say};

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

/// Two axum shops and one actix-cart with the session settings `store`,
/// behind a round-robin HAProxy: one browser session takes
/// [`CONCURRENT`] concurrent adds spread over the three, all land, and
/// every instance reads the same cart; a session started on any instance
/// goes on on each of the others.
async fn a_mixed_fleet_loses_no_add(name: &str, store: &[(&str, &str)]) {
    let data = TempDir::new("e2e-actix-fleet");
    let dir = data.path().to_string_lossy().into_owned();
    let mut env = store.to_vec();
    env.extend([("SHOP_DATA_DIR", dir.as_str()), INSECURE]);
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
    assert!(failed.is_empty(), "{name}: adds failed: HTTP {failed:?}");

    // The same cart from every instance, directly and through HAProxy.
    let cookie = client.cookie_header("/api/cart");
    let through_lb = cart_at(&lb.url(), &cookie).await;
    let skus = e2e::faults::skus(&through_lb);
    let landed = (0..CONCURRENT)
        .filter(|i| skus.contains(&format!("SKU-{i:04}")))
        .count();
    say(&format!(
        "mixed fleet (2 axum + 1 actix-web, {name}): {landed} of {CONCURRENT} concurrent adds landed"
    ));
    assert_eq!(landed, CONCURRENT, "{name}: lost adds: {skus:?}");
    assert_eq!(skus.len(), CONCURRENT + 1, "one line per SKU: {skus:?}");
    assert!(skus.contains(&"SKU-0399".to_owned()), "the first add");
    for addr in &addrs {
        let direct = cart_at(&format!("http://{addr}"), &cookie).await;
        assert_eq!(
            direct, through_lb,
            "{name}: the cart read on {addr} differs"
        );
    }

    // A cookie issued by either framework works on the other: a browser
    // starts on each instance in turn and adds on every other, then every
    // instance reads its whole cart.
    let bases: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    for first in 0..bases.len() {
        let mut browser = ShopClient::new(bases[first].clone());
        let mut added = Vec::new();
        for k in 0..bases.len() {
            browser.base.clone_from(&bases[(first + k) % bases.len()]);
            let sku = format!("SKU-{:04}", 300 + k);
            browser.add(&sku).await;
            added.push(sku);
        }
        for base in &bases {
            browser.base.clone_from(base);
            assert_eq!(
                browser.skus().await,
                added,
                "{name}: a session started on {} read on {base}",
                bases[first]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_fleet_on_redis_loses_no_add() {
    let url = redis::shared_url();
    require_server("REDIS_URL", &url).await;
    a_mixed_fleet_loses_no_add(
        "Redis",
        &[("SESSION_STORE", "redis"), ("REDIS_URL", url.as_str())],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_fleet_on_dynamodb_loses_no_add() {
    require_server("DYNAMODB_ENDPOINT", &dynalite::shared_endpoint()).await;
    // Session IDs are random: one table serves every run.
    let mut env = dynalite::shared_shop_env("shop_e2e_sessions");
    env.extend([
        ("SESSION_MAX_ATTEMPTS", "100000".to_owned()),
        // The emulator answers one request at a time: under 200 writers
        // of one item a call can queue for seconds.
        ("SESSION_STORE_TIMEOUT_MS", "150000".to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    a_mixed_fleet_loses_no_add("DynamoDB", &env).await;
}

/// What a client sees of an answer: the status, the headers it reads and
/// the body's bytes.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, Option<String>)>,
    body: Vec<u8>,
}

const COMPARED: [&str; 7] = [
    "content-type",
    "allow",
    "retry-after",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
];

/// One request of the comparison.
struct Req {
    what: &'static str,
    method: reqwest::Method,
    path: &'static str,
    body: Body,
}

enum Body {
    None,
    /// JSON of this many bytes, with its `Content-Length`.
    Sized(usize),
    /// JSON of this many bytes, sent in chunks without a length.
    Chunked(usize),
}

/// A JSON add whose SKU pads it to `len` bytes.
fn padded_json(len: usize) -> String {
    let frame = r#"{"sku":""}"#;
    format!(r#"{{"sku":"{}"}}"#, "x".repeat(len - frame.len()))
}

async fn answer(http: &reqwest::Client, base: &str, req: &Req) -> Answer {
    let mut builder = http
        .request(req.method.clone(), format!("{base}{}", req.path))
        .header("content-type", "application/json");
    builder = match req.body {
        Body::None => builder,
        Body::Sized(len) => builder.body(padded_json(len)),
        Body::Chunked(len) => {
            // Mapping the frames hides the length: reqwest sends it chunked.
            let body = Full::new(Bytes::from(padded_json(len))).map_frame(|frame| frame);
            builder.body(reqwest::Body::wrap(body))
        }
    };
    let res = builder
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} at {base}: an answer, not {e}", req.what));
    let headers = COMPARED
        .iter()
        .map(|h| {
            let value = res.headers().get(*h);
            (
                *h,
                value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    Answer {
        status: res.status().as_u16(),
        headers,
        body: res.bytes().await.expect("the body").to_vec(),
    }
}

/// The shop and actix-cart answer alike, byte for byte, where no handler
/// of the cart API runs: a path or method they do not serve gets the
/// shop's "not found" page (footer included), and a body too large the
/// shop's `413`, read first when it is declared so that the client sees
/// the answer rather than a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_cart_answers_unknown_paths_and_large_bodies_as_the_shop() {
    let env = [
        ("SESSION_STORE", "memory"),
        ("DATABASE_URL", "sqlite::memory:"),
        // One name for both, so that the pages' footers match.
        ("SHOP_INSTANCE", "e2e"),
        INSECURE,
    ];
    let shop = Shop::start(&env).await;
    let cart = Shop::start_binary("actix-cart", &env).await;
    let over = 512 * 1024;
    let requests = [
        Req {
            what: "an unknown path",
            method: reqwest::Method::GET,
            path: "/nope",
            body: Body::None,
        },
        Req {
            what: "an unknown path under /api",
            method: reqwest::Method::GET,
            path: "/api/nope",
            body: Body::None,
        },
        Req {
            what: "a POST to an unknown path",
            method: reqwest::Method::POST,
            path: "/api/nope",
            body: Body::Sized(20),
        },
        Req {
            what: "a method the cart does not take",
            method: reqwest::Method::PUT,
            path: "/api/cart",
            body: Body::None,
        },
        Req {
            what: "a read of the add route",
            method: reqwest::Method::GET,
            path: "/api/cart/items",
            body: Body::None,
        },
        Req {
            what: "HEAD of the cart",
            method: reqwest::Method::HEAD,
            path: "/api/cart",
            body: Body::None,
        },
        Req {
            what: "a declared 512 KB add",
            method: reqwest::Method::POST,
            path: "/api/cart/items",
            body: Body::Sized(over),
        },
        Req {
            what: "a declared 512 KB body to an unknown path",
            method: reqwest::Method::POST,
            path: "/api/nope",
            body: Body::Sized(over),
        },
        Req {
            what: "a declared 512 KB body to a read",
            method: reqwest::Method::GET,
            path: "/api/cart",
            body: Body::Sized(over),
        },
        Req {
            what: "a chunked 64 KB add",
            method: reqwest::Method::POST,
            path: "/api/cart/items",
            body: Body::Chunked(64 * 1024),
        },
        Req {
            what: "a chunked add just over the limit",
            method: reqwest::Method::POST,
            path: "/api/cart/items",
            body: Body::Chunked(shop::MAX_BODY + 1),
        },
    ];
    let http = reqwest::Client::new();
    let shop_base = format!("http://{}", shop.addr);
    let cart_base = format!("http://{}", cart.addr);
    let mut statuses = Vec::new();
    // Each a few times: without the drain, a reset comes now and then.
    for _ in 0..3 {
        for req in &requests {
            let want = answer(&http, &shop_base, req).await;
            let got = answer(&http, &cart_base, req).await;
            assert_eq!(
                got, want,
                "{}: actix-cart (left) and the shop (right) differ",
                req.what
            );
            statuses.push(got.status);
        }
    }
    // Alike, and as the shop must answer: not both wrong the same way.
    assert_eq!(
        statuses[..requests.len()],
        [404, 404, 404, 405, 405, 200, 413, 413, 413, 413, 413]
    );
    let not_found = answer(&http, &cart_base, &requests[0]).await;
    let page = String::from_utf8(not_found.body).expect("an HTML page");
    assert!(
        page.contains("not found") && page.contains("e2e"),
        "the shop's page with its footer: {page}"
    );
}
