//! actix-cart answers the cart API byte for byte as the axum shop does,
//! and a cookie of either works on the other over a shared store.

use actix_cart::{Connected, app, connect};
use actix_web::test::{TestRequest, init_service};
use shop::{Config, StoreKind};
use tower::ServiceExt as _;

/// One request of the comparison.
struct Req {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: String,
}

fn get(path: &str) -> Req {
    Req {
        method: "GET",
        path: path.to_owned(),
        content_type: None,
        body: String::new(),
    }
}

fn delete(path: &str) -> Req {
    Req {
        method: "DELETE",
        ..get(path)
    }
}

fn post(content_type: Option<&'static str>, body: impl Into<String>) -> Req {
    Req {
        method: "POST",
        path: "/api/cart/items".to_owned(),
        content_type,
        body: body.into(),
    }
}

const JSON: Option<&str> = Some("application/json");

/// What must be the same: status, the headers a client reads, the body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, Option<String>)>,
    body: String,
}

const COMPARED: [&str; 6] = [
    "content-type",
    "retry-after",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
];

/// The answer, and the session cookie it set (`name=value`), if any.
async fn via_axum(app: &axum::Router, req: &Req, cookie: Option<&str>) -> (Answer, Option<String>) {
    let mut builder = http::Request::builder()
        .method(req.method)
        .uri(&req.path)
        .header("content-length", req.body.len());
    if let Some(ct) = req.content_type {
        builder = builder.header("content-type", ct);
    }
    if let Some(c) = cookie {
        builder = builder.header("cookie", c);
    }
    let res = app
        .clone()
        .oneshot(
            builder
                .body(axum::body::Body::from(req.body.clone()))
                .unwrap(),
        )
        .await
        .unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let headers = COMPARED
        .iter()
        .map(|h| ((*h).to_owned(), header(h)))
        .collect();
    let set_cookie = header("set-cookie").map(|c| c.split(';').next().unwrap().to_owned());
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    (
        Answer {
            status,
            headers,
            body,
        },
        set_cookie,
    )
}

async fn via_actix<S, B>(app: &S, req: &Req, cookie: Option<&str>) -> (Answer, Option<String>)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let method = actix_web::http::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut builder = TestRequest::default()
        .method(method)
        .uri(&req.path)
        .insert_header(("content-length", req.body.len()))
        .set_payload(req.body.clone());
    if let Some(ct) = req.content_type {
        builder = builder.insert_header(("content-type", ct));
    }
    if let Some(c) = cookie {
        builder = builder.insert_header(("cookie", c));
    }
    let res = match app.call(builder.to_request()).await {
        Ok(res) => res,
        Err(e) => panic!("{} {}: {e}", req.method, req.path),
    };
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let headers = COMPARED
        .iter()
        .map(|h| ((*h).to_owned(), header(h)))
        .collect();
    let set_cookie = header("set-cookie").map(|c| c.split(';').next().unwrap().to_owned());
    let status = res.status().as_u16();
    let body = actix_web::body::to_bytes(res.into_body())
        .await
        .ok()
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    (
        Answer {
            status,
            headers,
            body,
        },
        set_cookie,
    )
}

fn config(store: StoreKind) -> Config {
    let mut config = Config::default();
    config.secure_cookie = false;
    config.database_url = Some("sqlite::memory:".into());
    config.session_store = store;
    // A fixed key: both apps seal and open the same cookies.
    config.cookie_keys = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    config
}

macro_rules! actix_app {
    ($config:expr) => {
        match connect($config).await.expect("actix-cart connects") {
            Connected::Sqlite(parts) => init_service(app(parts)).await,
            _ => unreachable!("the tests use SQLite"),
        }
    };
}

#[actix_web::test]
async fn the_cart_api_answers_as_the_shop_does() {
    let config = config(StoreKind::Memory);
    let axum_app = shop::app(&config).await.expect("the shop starts");
    let actix = actix_app!(&config);

    let oversized = format!(
        r#"{{"sku":"SKU-0001","qty":1,"pad":"{}"}}"#,
        "x".repeat(shop::MAX_BODY)
    );
    let long_sku = format!(r#"{{"sku":"{}","qty":1}}"#, "S".repeat(300));
    let requests = [
        get("/api/cart"),
        post(JSON, r#"{"sku":"SKU-0001","qty":2}"#),
        post(JSON, r#"{"sku":"SKU-0002"}"#),
        post(JSON, r#"{"sku":"SKU-0001","qty":3}"#),
        post(JSON, r#"{"sku":"SKU-0001","qty":0}"#),
        post(JSON, r#"{"sku":"SKU-0001","qty":100}"#),
        post(JSON, r#"{"sku":"NOPE","qty":1}"#),
        post(JSON, r#"{"sku":"","qty":1}"#),
        post(JSON, long_sku),
        post(JSON, r#"{"sku":"SKU-0001","qty":"x"}"#),
        post(JSON, r#"{"qty":1}"#),
        post(JSON, r#"{"sku":"#),
        post(JSON, r#"{"sku":"SKU-0001"} trailing"#),
        post(JSON, ""),
        post(None, r#"{"sku":"SKU-0001"}"#),
        post(Some("text/plain"), r#"{"sku":"SKU-0001"}"#),
        post(Some("application/vnd.api+json"), r#"{"sku":"SKU-0003"}"#),
        post(JSON, oversized),
        get("/api/cart"),
        delete("/api/cart/items/SKU-0002"),
        delete("/api/cart/items/NOPE"),
        get("/api/cart"),
        get("/api/products/SKU-0003"),
        get("/api/products/NOPE"),
        get("/healthz"),
    ];
    let (mut axum_cookie, mut actix_cookie) = (None::<String>, None::<String>);
    let mut statuses = Vec::new();
    for req in &requests {
        let (want, set) = via_axum(&axum_app, req, axum_cookie.as_deref()).await;
        axum_cookie = set.or(axum_cookie);
        let (got, set) = via_actix(&actix, req, actix_cookie.as_deref()).await;
        actix_cookie = set.or(actix_cookie);
        statuses.push(got.status);
        assert_eq!(
            got,
            want,
            "{} {} {:?}",
            req.method,
            req.path,
            req.body.get(..80)
        );
    }
    // Both answered alike, and as the shop must: not both wrong the same way.
    assert_eq!(
        statuses,
        [
            200, 200, 200, 200, 422, 422, 404, 404, 404, 422, 422, 400, 400, 400, 415, 415, 200,
            413, 200, 200, 200, 200, 200, 404, 200
        ]
    );
    let name = |c: &Option<String>| {
        c.as_deref()
            .and_then(|c| c.split_once('='))
            .map(|(n, _)| n.to_owned())
    };
    assert_eq!(name(&actix_cookie).as_deref(), Some("shop_session"));
    assert_eq!(name(&actix_cookie), name(&axum_cookie));
}

/// Cart additions alternate between the two frameworks with one cookie.
async fn cookies_cross_frameworks(store: StoreKind) {
    let mut config = config(store);
    if store == StoreKind::Redis {
        config.redis_url = Some(test_support::redis::shared_url());
    }
    let axum_app = shop::app(&config).await.expect("the shop starts");
    let actix = actix_app!(&config);
    let add = |sku: &str| post(JSON, format!(r#"{{"sku":"{sku}","qty":1}}"#));

    let (_, cookie) = via_axum(&axum_app, &add("SKU-0001"), None).await;
    let mut cookie = cookie.expect("the shop set a cookie");
    let (answer, set) = via_actix(&actix, &add("SKU-0002"), Some(&cookie)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    cookie = set.unwrap_or(cookie);
    let (answer, set) = via_axum(&axum_app, &add("SKU-0003"), Some(&cookie)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    cookie = set.unwrap_or(cookie);
    let want = r#"{"count":3,"items":[{"qty":1,"sku":"SKU-0001"},{"qty":1,"sku":"SKU-0002"},{"qty":1,"sku":"SKU-0003"}]}"#;
    assert_eq!(
        via_actix(&actix, &get("/api/cart"), Some(&cookie))
            .await
            .0
            .body,
        want
    );
    assert_eq!(
        via_axum(&axum_app, &get("/api/cart"), Some(&cookie))
            .await
            .0
            .body,
        want
    );
}

#[actix_web::test]
async fn a_cookie_works_on_both_frameworks_with_the_cookie_store() {
    cookies_cross_frameworks(StoreKind::Cookie).await;
}

#[actix_web::test]
async fn a_cookie_works_on_both_frameworks_with_redis() {
    cookies_cross_frameworks(StoreKind::Redis).await;
}
