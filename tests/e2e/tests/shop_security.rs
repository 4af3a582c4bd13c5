//! The shop's security basics over real HTTP: headers, CSRF tokens on
//! forms, JSON-only API writes, log-in rate limiting, session ID rotation
//! at log-in and removal at log-out, and 4xx (never 5xx) for bad input.

use e2e::client::{ShopClient, csrf_of};
use reqwest::StatusCode;
use serde_json::json;
use shop::{CONTENT_SECURITY_POLICY, Config, LOGIN_FAILURES_PER_ACCOUNT, app};
use test_support::unique;

async fn shop() -> String {
    let mut config = Config::default();
    config.secure_cookie = false;
    config.database_url = Some("sqlite::memory:".into());
    format!("http://{}", e2e::serve(app(&config).await.unwrap()).await)
}

/// A browser that does not follow redirects, to look at them.
fn no_redirects(base: &str) -> ShopClient {
    ShopClient::new(base).without_redirects()
}

async fn text(client: &ShopClient, path: &str) -> String {
    client
        .http
        .get(client.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("shop_session="))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let base = shop().await;
    let client = ShopClient::new(&base);
    for path in [
        "/",
        "/products/SKU-0001",
        "/api/cart",
        "/nope",
        "/static/shop.css",
    ] {
        let res = client.http.get(client.url(path)).send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(
            h["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{path}"
        );
    }
    let page = text(&client, "/").await;
    assert!(
        !page.contains("<script") && !page.contains("style=\""),
        "the CSP allows no script and no inline style"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_session_csrf_token() {
    let base = shop().await;
    let client = no_redirects(&base);
    let token = csrf_of(&text(&client, "/").await);
    fn form(csrf: &str) -> [(&'static str, &str); 2] {
        [("sku", "SKU-0002"), ("csrf", csrf)]
    }
    for bad in ["", "0123456789abcdef0123456789abcdef"] {
        let res = client
            .http
            .post(client.url("/cart/add"))
            .form(&form(bad))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "token {bad:?}");
    }
    // A form posted from another browser (another session) is refused too.
    let attacker = no_redirects(&base);
    let res = attacker
        .http
        .post(attacker.url("/cart/add"))
        .form(&form(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = client
        .http
        .post(client.url("/cart/add"))
        .form(&form(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(client.skus().await, ["SKU-0002"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_writes_need_a_json_body() {
    let base = shop().await;
    let client = ShopClient::new(&base);
    // What a cross-site HTML form can send.
    let res = client
        .http
        .post(client.url("/api/cart/items"))
        .form(&[("sku", "SKU-0001")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = client
        .http
        .post(client.url("/api/checkout"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(client.skus().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_rotates_the_session_and_is_rate_limited() {
    let base = shop().await;
    let email = format!("{}@example.com", unique("limit"));
    ShopClient::new(&base)
        .signup(&email, "the right password")
        .await;

    let client = ShopClient::new(&base);
    let res = client
        .http
        .post(client.url("/api/cart/items"))
        .json(&json!({"sku": "SKU-0005"}))
        .send()
        .await
        .unwrap();
    let before = session_cookie(&res).expect("a session");
    let res = client
        .http
        .post(client.url("/api/login"))
        .json(&json!({"email": email, "password": "the right password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let after = session_cookie(&res).expect("a new session cookie at log-in");
    assert_ne!(
        before.split(';').next(),
        after.split(';').next(),
        "log-in must change the session ID"
    );
    assert_eq!(client.skus().await, ["SKU-0005"], "the cart is kept");

    // Log-out removes the session.
    let res = client
        .http
        .post(client.url("/api/logout"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(session_cookie(&res).is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(client.skus().await, Vec::<String>::new());
    let res = client
        .http
        .get(client.url("/api/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Wrong passwords, then even the right one is refused for a while.
    let guesser = ShopClient::new(&base);
    for _ in 0..LOGIN_FAILURES_PER_ACCOUNT {
        let (status, _) = guesser
            .post_json("/api/login", &json!({"email": email, "password": "guess"}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let res = guesser
        .http
        .post(guesser.url("/api/login"))
        .json(&json!({"email": email, "password": "the right password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // Unknown accounts answer like wrong passwords.
    let (status, body) = guesser
        .post_json(
            "/api/login",
            &json!({"email": "nobody@example.com", "password": "whatever1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "wrong e-mail or password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_gets_a_server_error() {
    let base = shop().await;
    let client = ShopClient::new(&base);
    let long = "x".repeat(5000);
    let gets = [
        "/products/NOPE".to_owned(),
        format!("/products/{long}"),
        "/products/%FF%FE".to_owned(),
        "/?page=-1".to_owned(),
        "/?page=99999999999".to_owned(),
        "/?page=4000000".to_owned(),
        "/orders/abc".to_owned(),
        "/orders/1".to_owned(),
        "/api/orders/99999999999999999999".to_owned(),
        "/api/products?page=x".to_owned(),
        "/api/products/%00".to_owned(),
        "/profile".to_owned(),
    ];
    for path in &gets {
        let res = client.http.get(client.url(path)).send().await.unwrap();
        assert!(
            !res.status().is_server_error(),
            "GET {path:.60}: {}",
            res.status()
        );
    }
    let posts = [
        ("/api/cart/items", json!({"sku": long})),
        ("/api/cart/items", json!({"sku": "SKU-0001", "qty": -1})),
        ("/api/cart/items", json!({"sku": "SKU-0001", "qty": 100})),
        ("/api/cart/items", json!({"sku": 5})),
        ("/api/cart/items", json!([])),
        (
            "/api/signup",
            json!({"email": "not-an-email", "password": "long enough"}),
        ),
        (
            "/api/signup",
            json!({"email": "a@b.example", "password": "short"}),
        ),
        (
            "/api/signup",
            json!({"email": "a@b.example", "password": long}),
        ),
        ("/api/login", json!({"email": "", "password": ""})),
        (
            "/api/login",
            json!({"email": "a@b.example", "password": long}),
        ),
        ("/api/profile", json!({"name": "x"})),
        ("/api/checkout", json!({})),
    ];
    for (path, body) in &posts {
        let (status, _) = client.post_json(path, body).await;
        assert!(status.is_client_error(), "POST {path} {body:.60}: {status}");
    }
    let email = format!("{}@example.com", unique("input"));
    client.signup(&email, "password one").await;
    let (status, _) = client.post_json("/api/checkout", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "empty cart");
    for body in [
        json!({"name": "\u{0007}bell"}),
        json!({"name": "ok", "addresses": ["a", "b", "c", "d"]}),
        json!({"name": long}),
    ] {
        let (status, _) = client.post_json("/api/profile", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:.60}");
    }
    let form = client
        .http
        .post(client.url("/profile"))
        .form(&[("csrf", "x"), ("name", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
}
