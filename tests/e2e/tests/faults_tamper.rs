//! Hostile input over real HTTP through both front ends of the shop's
//! API, the shop (axum) and actix-cart (actix-web), with sessions sealed
//! in the cookie (`SESSION_STORE=cookie`). Every case runs through each
//! front end in [`FRONT_ENDS`], and both must answer alike.
//!
//! - The tamper matrix: every byte of a valid sealed cookie flipped, every
//!   truncation, extensions, garbage, the value under other cookie names,
//!   a value sealed for another cookie name, an expired value replayed, a
//!   value sealed with a retired key. None may be accepted as a session
//!   (the cart it holds must not show) and none may get a 5xx. Positive
//!   controls show that the untouched and hand-sealed values are accepted,
//!   so the rejections are the mechanism at work.
//! - Hostile headers and bodies the other shop tests do not send: huge and
//!   numerous cookies, non-UTF-8 header values, oversized form and JSON
//!   bodies: a clear 4xx or a fresh session, never a 5xx.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use reqwest::StatusCode;
use serde_json::{Value, json};
use session_core::store::{Data, Record, now};
use session_core::{ClientStore, Id};
use session_stores::cookie::{CookieStore, Key};
use test_support::say;
use test_support::shop::Shop;

const COOKIE: &str = "shop_session";

/// The binaries serving the shop's API: the shop (axum) and actix-cart
/// (actix-web).
const FRONT_ENDS: [&str; 2] = ["shop", "actix-cart"];

/// `front_end` with sessions sealed in the cookie under `keys` (the first
/// seals, the others still open), and its base URL.
async fn start(front_end: &'static str, keys: &[&Key]) -> (Shop, String) {
    let keys = keys
        .iter()
        .map(|k| k.to_base64())
        .collect::<Vec<_>>()
        .join(",");
    let shop = Shop::start_binary(
        front_end,
        &[
            ("SESSION_STORE", "cookie"),
            ("COOKIE_KEYS", keys.as_str()),
            ("DATABASE_URL", "sqlite::memory:"),
            ("COOKIE_SECURE", "false"),
        ],
    )
    .await;
    let base = format!("http://{}", shop.addr);
    (shop, base)
}

/// `GET /api/cart` with exactly this `Cookie` header: the status, the
/// SKUs in the cart and the `Set-Cookie` value, if any.
async fn cart_with(base: &str, cookie: &str) -> (StatusCode, Vec<String>, Option<String>) {
    let cookie = HeaderValue::from_str(cookie).expect("a header value");
    e2e::faults::cart_with(base, COOKIE, cookie).await
}

/// A cart of one line, sealed for cookie `name` with `key`, expiring
/// after `ttl`.
fn sealed(key: &Key, name: &str, sku: &str, ttl: Duration) -> String {
    let mut data = Data::new();
    data.insert(
        "cart".into(),
        json!({"items": [{"sku": sku, "qty": 1}]}).into(),
    );
    let now = now();
    let record = Record::new(Id::random(), data, now, Some(now + ttl));
    CookieStore::new(key.clone())
        .seal(name, &record)
        .expect("seal a cookie")
}

/// The tamper matrix through `front_end`: what each variant was answered.
async fn tamper_matrix(front_end: &'static str) -> Vec<(String, StatusCode)> {
    let key = Key::generate();
    let (_shop, base) = start(front_end, &[&key]).await;

    // A real cookie from the front end, holding one line.
    let value = e2e::faults::cookie_after_add(&base, COOKIE, "SKU-0007").await;

    // Controls: the cookie as issued, and one sealed by hand, open.
    let (status, skus, _) = cart_with(&base, &format!("{COOKIE}={value}")).await;
    assert_eq!(
        (status, skus),
        (StatusCode::OK, vec!["SKU-0007".to_owned()]),
        "{front_end}"
    );
    let by_hand = sealed(&key, COOKIE, "SKU-0042", Duration::from_secs(2));
    let (status, skus, _) = cart_with(&base, &format!("{COOKIE}={by_hand}")).await;
    assert_eq!(
        (status, skus),
        (StatusCode::OK, vec!["SKU-0042".to_owned()]),
        "{front_end}: a cookie sealed by hand should open: the matrix below would prove nothing"
    );

    let mut variants: Vec<(String, String)> = Vec::new();
    let raw = URL_SAFE_NO_PAD.decode(&value).expect("base64url");
    for i in 0..raw.len() {
        for bit in [0x01u8, 0x80] {
            let mut bytes = raw.clone();
            bytes[i] ^= bit;
            variants.push((
                format!("byte {i} ^ {bit:#04x}"),
                format!("{COOKIE}={}", URL_SAFE_NO_PAD.encode(&bytes)),
            ));
        }
    }
    for len in 0..value.len() {
        variants.push((
            format!("truncated to {len}"),
            format!("{COOKIE}={}", &value[..len]),
        ));
    }
    for extra in ["A", "AAAA", "==", "%00"] {
        variants.push((
            format!("extended by {extra}"),
            format!("{COOKIE}={value}{extra}"),
        ));
    }
    for garbage in ["garbage", "%00%01", "\"", "=; ;;"] {
        variants.push((format!("garbage {garbage}"), format!("{COOKIE}={garbage}")));
    }
    for name in ["session", "id", "shop_session2", "SHOP_SESSION"] {
        variants.push((format!("under the name {name}"), format!("{name}={value}")));
    }
    variants.push((
        "sealed for another cookie name".into(),
        format!(
            "{COOKIE}={}",
            sealed(&key, "other", "SKU-0042", Duration::from_secs(60))
        ),
    ));
    variants.push((
        "sealed with an unknown key".into(),
        format!(
            "{COOKIE}={}",
            sealed(
                &Key::generate(),
                COOKIE,
                "SKU-0042",
                Duration::from_secs(60)
            )
        ),
    ));

    let mut seen = Vec::new();
    let mut server_errors = Vec::new();
    let mut accepted = Vec::new();
    for (what, cookie) in &variants {
        let (status, skus, set) = cart_with(&base, cookie).await;
        seen.push((what.clone(), status));
        if status.is_server_error() {
            server_errors.push((what.clone(), status));
        }
        if !skus.is_empty() || set.as_deref() == Some(value.as_str()) {
            accepted.push(what.clone());
        }
        assert_eq!(
            status,
            StatusCode::OK,
            "{front_end}: {what}: a fresh session expected"
        );
    }

    // The hand-sealed cookie has expired by now: replaying it starts a
    // fresh session.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, skus, _) = cart_with(&base, &format!("{COOKIE}={by_hand}")).await;
    seen.push(("expired cookie replayed".into(), status));
    if !skus.is_empty() {
        accepted.push("expired cookie replayed".into());
    }

    // Key rotation: an instance that retired `key` refuses its cookies;
    // one that still lists it accepts and reseals them (the control).
    let new_key = Key::generate();
    let (_retired, retired) = start(front_end, &[&new_key]).await;
    let (status, skus, _) = cart_with(&retired, &format!("{COOKIE}={value}")).await;
    seen.push(("sealed with a retired key".into(), status));
    if !skus.is_empty() {
        accepted.push("sealed with a retired key".into());
    }
    let (_rotating, rotating) = start(front_end, &[&new_key, &key]).await;
    let (status, skus, resealed) = cart_with(&rotating, &format!("{COOKIE}={value}")).await;
    assert_eq!(
        (status, skus),
        (StatusCode::OK, vec!["SKU-0007".to_owned()]),
        "{front_end}: a cookie under the second key should still open"
    );
    let resealed = resealed.expect("resealed under the current key");
    let (_, skus, _) = cart_with(&retired, &format!("{COOKIE}={resealed}")).await;
    assert_eq!(
        skus,
        ["SKU-0007"],
        "{front_end}: the resealed cookie uses the new key"
    );

    say(&format!(
        "tamper matrix through {front_end}: {} variants plus expired and retired-key replays; \
         accepted {accepted:?}, 5xx {server_errors:?}",
        variants.len()
    ));
    assert!(
        accepted.is_empty(),
        "{front_end}: accepted as a session: {accepted:?}"
    );
    assert!(
        server_errors.is_empty(),
        "{front_end}: server errors: {server_errors:?}"
    );
    seen
}

/// The answers `run` gets through each front end, which must be the
/// same; the first front end's.
async fn alike<F, Fut>(run: F) -> Vec<(String, StatusCode)>
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Vec<(String, StatusCode)>>,
{
    let mut answers = Vec::new();
    for front_end in FRONT_ENDS {
        answers.push((front_end, run(front_end).await));
    }
    let (first, want) = &answers[0];
    for (other, got) in &answers[1..] {
        let differ: Vec<_> = want.iter().zip(got).filter(|(w, g)| w != g).collect();
        assert!(
            differ.is_empty() && want.len() == got.len(),
            "{first} and {other} answer differently: {differ:?}"
        );
    }
    answers.swap_remove(0).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_renamed_expired_and_retired_cookies_are_never_accepted() {
    alike(tamper_matrix).await;
}

/// Hostile headers and bodies through `front_end`: what each was answered.
async fn hostile_input(front_end: &'static str) -> Vec<(String, StatusCode)> {
    let key = Key::generate();
    let (_shop, base) = start(front_end, &[&key]).await;
    let http = reqwest::Client::new();
    let mut seen = Vec::new();

    // Cookies: many, huge, repeated, not UTF-8.
    let many: String = (0..1000)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    let huge = format!("{COOKIE}={}", "A".repeat(100 * 1024));
    let big_sealed_looking = format!("{COOKIE}={}", "A".repeat(7000));
    let cookies: Vec<(&str, HeaderValue)> = vec![
        ("1000 cookies", HeaderValue::from_str(&many).unwrap()),
        ("100 KB cookie", HeaderValue::from_str(&huge).unwrap()),
        (
            "7 KB session cookie",
            HeaderValue::from_str(&big_sealed_looking).unwrap(),
        ),
        (
            "non-UTF-8 session cookie",
            HeaderValue::from_bytes(b"shop_session=\xff\xfe\x80").unwrap(),
        ),
        (
            "tab and obsolete text bytes",
            HeaderValue::from_bytes(b"shop_session=a\tb\xa0\xfe").unwrap(),
        ),
    ];
    for (what, cookie) in cookies {
        let res = http
            .get(format!("{base}/api/cart"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = res.status();
        seen.push((what.to_owned(), status));
        assert!(
            status == StatusCode::OK || status.is_client_error(),
            "{front_end}: {what}: {status}"
        );
        if status == StatusCode::OK {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["items"], json!([]), "{front_end}: {what}");
        }
    }
    // Both front ends answer this one `431` with `Connection: close` and
    // close the connection. A pooling client can hand the next request
    // to that connection before it has seen the close, and the request
    // then fails on the client's side; so this request gets a client of
    // its own.
    let mut req = reqwest::Client::new().get(format!("{base}/api/cart"));
    for i in 0..200 {
        req = req.header("cookie", format!("{COOKIE}=garbage{i}"));
    }
    let status = req.send().await.unwrap().status();
    seen.push(("200 Cookie headers".into(), status));
    assert!(
        status == StatusCode::OK || status.is_client_error(),
        "{front_end}: 200 Cookie headers: {status}"
    );

    // Other headers that are not UTF-8, on a request that reads the
    // session.
    for (name, what) in [
        ("user-agent", "non-UTF-8 User-Agent"),
        ("x-forwarded-for", "non-UTF-8 X-Forwarded-For"),
        ("accept", "non-UTF-8 Accept"),
    ] {
        let status = http
            .get(format!("{base}/api/cart"))
            .header(name, HeaderValue::from_bytes(b"\xc3\x28\xff").unwrap())
            .send()
            .await
            .unwrap()
            .status();
        seen.push((what.into(), status));
        assert_eq!(status, StatusCode::OK, "{front_end}: {what}");
    }
    let status = http
        .post(format!("{base}/api/cart/items"))
        .header(
            "content-type",
            HeaderValue::from_bytes(b"application/json\xff").unwrap(),
        )
        .body(r#"{"sku":"SKU-0001"}"#)
        .send()
        .await
        .unwrap()
        .status();
    seen.push(("non-UTF-8 Content-Type".into(), status));
    assert!(
        status.is_client_error(),
        "{front_end}: non-UTF-8 Content-Type: {status}"
    );

    // Oversized bodies on every kind of write of the shop, far over its
    // 16 KB limit and larger than the socket buffers, so the client is
    // still writing when the front end decides: it reads such a body
    // before it answers, and the client sees the 413 rather than a reset.
    // Each is sent a few times: without the drain the reset comes now and
    // then. actix-cart serves only the cart API, but refuses a body
    // declared too large on any path, as the shop does.
    let big_json = format!(r#"{{"sku":"{}"}}"#, "x".repeat(512 * 1024));
    for path in [
        "/api/cart/items",
        "/api/signup",
        "/api/login",
        "/api/profile",
    ]
    .repeat(5)
    {
        let res = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(big_json.clone())
            .send()
            .await
            .unwrap();
        let status = res.status();
        seen.push((format!("512 KB JSON to {path}"), status));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{front_end}: {path}");
        assert_eq!(
            res.headers()
                .get("x-content-type-options")
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{front_end}: the 413 carries the security headers"
        );
    }
    let big_form = format!("sku=SKU-0001&csrf={}", "x".repeat(512 * 1024));
    for path in ["/cart/add", "/login", "/signup", "/profile"].repeat(5) {
        let status = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big_form.clone())
            .send()
            .await
            .unwrap()
            .status();
        seen.push((format!("512 KB form to {path}"), status));
        assert!(status.is_client_error(), "{front_end}: {path}: {status}");
    }
    say(&format!("hostile input through {front_end}: {seen:?}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_and_bodies_get_a_4xx_or_a_fresh_session() {
    alike(hostile_input).await;
}
