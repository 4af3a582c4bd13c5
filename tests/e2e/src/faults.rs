//! Timed requests for fault tests: each request's status (or transport
//! error) and latency, and tallies of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::ShopClient;

/// Longest a single request of a fault test may take before it counts as
/// hung.
pub const HANG: Duration = Duration::from_secs(30);

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The status, or `None` for a transport error (reset, timeout).
    pub status: Option<u16>,
    /// How long it took.
    pub took: Duration,
    /// Whether the response carried `Retry-After`.
    pub retry_after: bool,
    /// When it was sent.
    pub sent: Instant,
    /// The JSON body, if it was JSON.
    pub body: Value,
}

impl Probe {
    /// The status as text (`"200"`, `"503"`, or `"transport error"`).
    pub fn label(&self) -> String {
        self.status
            .map_or_else(|| "transport error".to_owned(), |s| s.to_string())
    }
}

async fn finish(sent: Instant, res: reqwest::Result<reqwest::Response>) -> Probe {
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after = res.headers().contains_key("retry-after");
            let text = res.text().await.unwrap_or_default();
            Probe {
                status: Some(status),
                took: sent.elapsed(),
                retry_after,
                sent,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
            }
        }
        Err(_) => Probe {
            status: None,
            took: sent.elapsed(),
            retry_after: false,
            sent,
            body: Value::Null,
        },
    }
}

/// `GET path`, timed.
pub async fn get(client: &ShopClient, path: &str) -> Probe {
    let sent = Instant::now();
    let res = client.http.get(client.url(path)).timeout(HANG).send().await;
    finish(sent, res).await
}

/// `POST path` with a JSON body, timed.
pub async fn post(client: &ShopClient, path: &str, body: &Value) -> Probe {
    let sent = Instant::now();
    let res = client
        .http
        .post(client.url(path))
        .json(body)
        .timeout(HANG)
        .send()
        .await;
    finish(sent, res).await
}

/// Adds one of `sku` to the cart, timed.
pub async fn add(client: &ShopClient, sku: &str) -> Probe {
    post(client, "/api/cart/items", &json!({ "sku": sku })).await
}

/// The SKUs of a cart answer (`{"items": [...]}`).
pub fn skus(cart: &Value) -> Vec<String> {
    cart["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|l| l["sku"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Counts of outcomes by status, and the slowest request of each.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests by status label.
    pub counts: BTreeMap<String, usize>,
    /// The slowest request by status label.
    pub slowest: BTreeMap<String, Duration>,
}

impl Tally {
    /// Counts `probe`.
    pub fn count(&mut self, probe: &Probe) {
        let label = probe.label();
        *self.counts.entry(label.clone()).or_default() += 1;
        let slowest = self.slowest.entry(label).or_default();
        *slowest = (*slowest).max(probe.took);
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Tally) {
        for (k, v) in &other.counts {
            *self.counts.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.slowest {
            let slowest = self.slowest.entry(k.clone()).or_default();
            *slowest = (*slowest).max(*v);
        }
    }

    /// How many answered `status`.
    pub fn of(&self, status: u16) -> usize {
        self.counts.get(&status.to_string()).copied().unwrap_or(0)
    }

    /// Labels other than those in `allowed`, with their counts.
    pub fn unexpected(&self, allowed: &[u16]) -> Vec<(String, usize)> {
        self.counts
            .iter()
            .filter(|(k, _)| !allowed.iter().any(|a| a.to_string() == **k))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// One line: `200: 812 (slowest 35 ms), 503: 40 (slowest 507 ms)`.
    pub fn line(&self) -> String {
        self.counts
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {v} (slowest {} ms)",
                    self.slowest.get(k).map_or(0, Duration::as_millis)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Adds `sku` to the cart of a new session at `base` and returns the value
/// of the session cookie `name` the answer set.
///
/// # Panics
///
/// If the add is not answered `200` with that cookie.
pub async fn cookie_after_add(base: &str, name: &str, sku: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/cart/items"))
        .json(&json!({ "sku": sku }))
        .send()
        .await
        .expect("POST /api/cart/items");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "add {sku} at {base}");
    res.headers()["set-cookie"]
        .to_str()
        .expect("a text Set-Cookie")
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix(&format!("{name}=")))
        .expect("a session cookie")
        .to_owned()
}

/// `GET /api/cart` at `base` with exactly this `Cookie` header: the status,
/// the SKUs in the cart and the value of the session cookie `name` the
/// answer set, if any.
pub async fn cart_with(
    base: &str,
    name: &str,
    cookie: reqwest::header::HeaderValue,
) -> (reqwest::StatusCode, Vec<String>, Option<String>) {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/cart"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET /api/cart");
    let status = res.status();
    let set = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.strip_prefix(&format!("{name}=")))
        .map(str::to_owned);
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, skus(&body), set)
}
