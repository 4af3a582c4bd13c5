//! Session security through the shop, checked where the other shop tests
//! stop short:
//!
//! - fixation: log-in issues a new ID, the old ID's record is gone from
//!   Redis and a request with it is a fresh, logged-out session; a planted
//!   well-formed ID is never adopted; log-out deletes the record;
//! - the shop binary with its default settings sets `Secure`, `HttpOnly`
//!   and `SameSite=Lax`;
//! - 10 000 sessions created through the layer: 22-character URL-safe IDs
//!   carrying 128 bits, all distinct;
//! - passwords are stored as Argon2id hashes, never as given.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::client::ShopClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use session_core::test_suite::TestApp;
use session_core::{Id, SessionLayer, SessionStore};
use session_stores::{MemoryStore, RedisStore};
use shop::{Config, StoreKind, app};
use test_support::env::require_server;
use test_support::shop::Shop;
use test_support::{TempDir, redis, say, unique};

fn session_of(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next()?.strip_prefix("shop_session="))
        .map(str::to_owned)
}

async fn send(
    base: &str,
    method: &str,
    path: &str,
    cookie: &str,
    body: Value,
) -> reqwest::Response {
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    let req = if method == "GET" {
        http.get(url)
    } else {
        http.post(url).json(&body)
    };
    req.header("cookie", format!("shop_session={cookie}"))
        .send()
        .await
        .expect(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_replaces_the_id_and_log_out_deletes_the_record() {
    let redis_url = redis::shared_url();
    require_server("REDIS_URL", &redis_url).await;
    let mut config = Config::default();
    config.session_store = StoreKind::Redis;
    config.redis_url = Some(redis_url.clone());
    config.secure_cookie = false;
    config.database_url = Some("sqlite::memory:".into());
    let base = format!("http://{}", e2e::serve(app(&config).await.unwrap()).await);
    // The shop's store, to look at the records themselves.
    let store = RedisStore::builder()
        .with_key_prefix("shop:session:")
        .connect(&redis_url)
        .await
        .expect("the shared Redis");
    let email = format!("{}@example.com", unique("fixation"));
    ShopClient::new(&base)
        .signup(&email, "a long password")
        .await;

    // An attacker plants a well-formed ID: it is never adopted.
    let planted = Id::random();
    let res = send(
        &base,
        "POST",
        "/api/cart/items",
        planted.as_str(),
        json!({"sku": "SKU-0003"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let before = session_of(&res).expect("a session");
    assert_ne!(before, planted.as_str(), "a planted ID was adopted");
    let before_id = Id::parse(&before).expect("a well-formed ID");
    assert!(store.load(&before_id).await.unwrap().is_some());
    assert!(store.load(&planted).await.unwrap().is_none());

    // Log-in: a new ID; the old record is gone.
    let res = send(
        &base,
        "POST",
        "/api/login",
        &before,
        json!({"email": email, "password": "a long password"}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let after = session_of(&res).expect("a new session cookie at log-in");
    assert_ne!(after, before, "log-in kept the session ID");
    let after_id = Id::parse(&after).expect("a well-formed ID");
    assert!(
        store.load(&before_id).await.unwrap().is_none(),
        "the pre-log-in record still exists"
    );
    let record = store
        .load(&after_id)
        .await
        .unwrap()
        .expect("the new record");
    assert!(
        record.data.contains_key("user"),
        "the new session is logged in"
    );

    // The old ID is worthless: logged out, empty cart, and not adopted.
    let res = send(&base, "GET", "/api/profile", &before, Value::Null).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = send(&base, "GET", "/api/cart", &before, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cart: Value = res.json().await.unwrap();
    assert_eq!(cart["items"], json!([]));
    let res = send(&base, "GET", "/api/profile", &after, Value::Null).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the new ID is the logged-in one"
    );

    // Log-out deletes the record and expires the cookie.
    let res = send(&base, "POST", "/api/logout", &after, json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let expired = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("shop_session=;") && c.contains("Max-Age=0"));
    assert!(expired, "log-out does not expire the cookie");
    assert!(
        store.load(&after_id).await.unwrap().is_none(),
        "log-out left the record in the store"
    );
    let res = send(&base, "GET", "/api/profile", &after, Value::Null).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    say("fixation: planted ID refused, ID replaced at log-in, old and logged-out records deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_binary_sets_secure_http_only_lax_cookies_by_default() {
    let data = TempDir::new("stateful-faults-defaults");
    let dir = data.path().to_string_lossy().into_owned();
    // Nothing but a data directory: every other setting is the default.
    let shop = Shop::start(&[("SHOP_DATA_DIR", dir.as_str())]).await;
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/cart/items", shop.addr))
        .json(&json!({"sku": "SKU-0001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(&attr), "{attr} missing from {cookie}");
    }
    let id = attrs[0]
        .strip_prefix("shop_session=")
        .expect("shop_session");
    assert!(Id::parse(id).is_some(), "not a session ID: {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sessions_through_the_layer_have_distinct_128_bit_ids() {
    let store = MemoryStore::default();
    let app = TestApp::new(SessionLayer::new(store.clone()), |s, _| async move {
        s.insert("k", 1).await?;
        Ok(String::new())
    });
    let mut seen = HashSet::new();
    let mut ones = [0u32; 128];
    const N: usize = 10_000;
    for _ in 0..N {
        let cookie = app.send(None).await.cookie.expect("a session cookie");
        let id = cookie.split_once('=').expect("name=value").1.to_owned();
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        let raw = URL_SAFE_NO_PAD.decode(&id).expect("base64url");
        assert_eq!(raw.len(), 16, "128 bits");
        for (i, count) in ones.iter_mut().enumerate() {
            *count += u32::from(raw[i / 8] >> (i % 8) & 1);
        }
        assert!(seen.insert(id), "a session ID repeated");
    }
    for id in &seen {
        let id = Id::parse(id).expect("a well-formed ID");
        assert!(store.load(&id).await.unwrap().is_some(), "not stored");
    }
    // Every bit varies: about half of the IDs have it set.
    let (low, high) = (N as u32 * 45 / 100, N as u32 * 55 / 100);
    for (i, count) in ones.iter().enumerate() {
        assert!(
            (low..=high).contains(count),
            "bit {i} set in {count} of {N} IDs"
        );
    }
    say(&format!(
        "{N} session IDs through the layer: all distinct, every bit balanced"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_as_argon2id_hashes() {
    let data = TempDir::new("stateful-faults-argon2");
    let file = data.path().join("shop.db");
    let mut config = Config::default();
    config.secure_cookie = false;
    config.database_url = Some(format!("sqlite:{}?mode=rwc", file.display()));
    let base = format!("http://{}", e2e::serve(app(&config).await.unwrap()).await);
    let password = "correct horse battery";
    let email = format!("{}@example.com", unique("argon"));
    ShopClient::new(&base).signup(&email, password).await;
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display()))
        .await
        .expect("open the shop's database");
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = ?")
        .bind(&email)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "not Argon2id: {hash}");
    assert!(!hash.contains(password), "the password is in the hash");
    // Salted: the same password for another account hashes differently.
    let other = format!("{}@example.com", unique("argon2"));
    ShopClient::new(&base).signup(&other, password).await;
    let hash2: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = ?")
        .bind(&other)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_ne!(hash, hash2, "unsalted hashes");
}
