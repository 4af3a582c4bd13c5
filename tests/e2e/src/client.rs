//! A small client for the shop's JSON API, with a cookie jar like a
//! browser's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore as _, Jar};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// One browser: a cookie jar and the shop's base URL.
#[derive(Debug, Clone)]
pub struct ShopClient {
    /// The HTTP client (cookies on).
    pub http: reqwest::Client,
    /// Its cookies.
    pub jar: Arc<Jar>,
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    options: Options,
}

/// How [`ShopClient::http`] was built.
#[derive(Debug, Clone)]
struct Options {
    user_agent: Option<String>,
    follow_redirects: bool,
}

impl ShopClient {
    /// A new browser for the shop at `base`.
    ///
    /// # Panics
    ///
    /// If the HTTP client cannot be built.
    pub fn new(base: impl Into<String>) -> Self {
        let jar = Arc::new(Jar::default());
        let options = Options {
            user_agent: None,
            follow_redirects: true,
        };
        ShopClient {
            http: http_client(&jar, &options),
            jar,
            base: base.into(),
            options,
        }
    }

    /// The same browser (cookie jar) sending `User-Agent: agent`.
    ///
    /// # Panics
    ///
    /// If the HTTP client cannot be built.
    #[must_use]
    pub fn with_user_agent(mut self, agent: &str) -> Self {
        self.options.user_agent = Some(agent.to_owned());
        self.http = http_client(&self.jar, &self.options);
        self
    }

    /// The same browser (cookie jar), not following redirects, to look at
    /// them.
    ///
    /// # Panics
    ///
    /// If the HTTP client cannot be built.
    #[must_use]
    pub fn without_redirects(mut self) -> Self {
        self.options.follow_redirects = false;
        self.http = http_client(&self.jar, &self.options);
        self
    }

    /// The same browser (cookie jar and all) talking to `base` instead:
    /// another instance, or the load balancer.
    #[must_use]
    pub fn at(&self, base: impl Into<String>) -> Self {
        ShopClient {
            base: base.into(),
            ..self.clone()
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`, as JSON, asserting a success status.
    ///
    /// # Panics
    ///
    /// On a failed request or a non-success status.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.http.get(self.url(path)).send().await.expect(path);
        let status = res.status();
        let body = res.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).expect("json")
    }

    /// `GET path`: the page's HTML (or whatever body), whatever the status.
    ///
    /// # Panics
    ///
    /// On a failed request.
    pub async fn page(&self, path: &str) -> String {
        get_text(&self.http, &self.url(path)).await
    }

    /// `method path`, with a JSON body when there is one: the status and
    /// the JSON answer (`null` when the answer is not JSON).
    ///
    /// # Panics
    ///
    /// On a failed request.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let res = request.send().await.expect(path);
        let status = res.status();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body: the status and the JSON answer.
    ///
    /// # Panics
    ///
    /// On a failed request.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `POST path` with a JSON body, asserting success.
    ///
    /// # Panics
    ///
    /// On a failed request or a non-success status.
    pub async fn ok(&self, path: &str, body: &Value) -> Value {
        let (status, value) = self.post_json(path, body).await;
        assert!(status.is_success(), "POST {path}: {status} {value}");
        value
    }

    /// Adds one of `sku` to the cart: the updated cart.
    ///
    /// # Panics
    ///
    /// If the shop does not answer `200`.
    pub async fn add(&self, sku: &str) -> Value {
        self.ok("/api/cart/items", &json!({ "sku": sku })).await
    }

    /// The SKUs in the cart, in order.
    ///
    /// # Panics
    ///
    /// If the shop does not answer with a cart.
    pub async fn skus(&self) -> Vec<String> {
        let cart = self.get_json("/api/cart").await;
        cart["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|l| l["sku"].as_str().expect("sku").to_owned())
            .collect()
    }

    /// Creates an account and logs in.
    ///
    /// # Panics
    ///
    /// If sign-up fails.
    pub async fn signup(&self, email: &str, password: &str) -> Value {
        self.ok(
            "/api/signup",
            &json!({ "email": email, "password": password, "name": "Test" }),
        )
        .await
    }

    /// Logs in.
    ///
    /// # Panics
    ///
    /// If log-in fails.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.ok(
            "/api/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// The `Cookie` header this client sends to `path`: its size in bytes
    /// is what every request carries.
    ///
    /// # Panics
    ///
    /// If the URL is malformed.
    pub fn cookie_header(&self, path: &str) -> String {
        let url = self.url(path).parse().expect("url");
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }
}

fn http_client(jar: &Arc<Jar>, options: &Options) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .cookie_provider(Arc::clone(jar))
        .timeout(Duration::from_secs(180));
    if let Some(agent) = &options.user_agent {
        builder = builder.user_agent(agent.as_str());
    }
    if !options.follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    builder.build().expect("http client")
}

/// The CSRF token in the forms of an HTML page.
///
/// # Panics
///
/// If the page has no CSRF field.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 32].to_owned()
}

/// `GET url` with `http`: the body as text, whatever the status.
///
/// # Panics
///
/// On a failed request.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    let res = http.get(url).send().await.expect(url);
    res.text().await.expect("body")
}

/// Times `n` sequential requests of `f` and returns the median.
pub async fn median_latency<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    times.sort();
    times[n / 2]
}
