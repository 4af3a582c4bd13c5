//! Each way of keeping a cart across instances, reproduced with real parts:
//! three shop processes behind HAProxy, driven over HTTP.
//!
//! Every test also measures its strategy the same way and prints one row
//! of the comparison table of `docs/strategies.md` (run with
//! `--nocapture` to see them); the rows are also written to
//! `target/e2e-artifacts/strategies/<strategy>.json`.
//!
//! The Redis, DynamoDB and Memcached tests need `REDIS_URL`,
//! `DYNAMODB_ENDPOINT` (with `AWS_*`) and `MEMCACHED_URLS` from
//! `scripts/services.sh`; they fail when the servers cannot be reached.

use std::time::Duration;

use e2e::client::{ShopClient, median_latency};
use reqwest::StatusCode;
use serde_json::json;
use test_support::env::require_server;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::paths::artifacts_dir;
use test_support::{dynalite, memcached, redis, say};

const INSECURE: (&str, &str) = ("COOKIE_SECURE", "false");
/// Concurrent adds of distinct SKUs with one session cookie.
const CONCURRENT: usize = 200;

/// One strategy at a time, so that the latencies compare like with like.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One row of the comparison table.
#[derive(Debug, Default)]
struct Row {
    strategy: &'static str,
    survives_round_robin: Option<bool>,
    survives_instance_loss: Option<bool>,
    concurrent_landed: usize,
    concurrent_errors: usize,
    error_statuses: Vec<u16>,
    concurrent_time: Duration,
    cookie_bytes: usize,
    cart_get_p50: Duration,
}

impl Row {
    fn yes_no(v: Option<bool>) -> &'static str {
        match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "n/a",
        }
    }

    fn report(&self) {
        let line = format!(
            "| {} | {} | {} | {} of {CONCURRENT} ({} failed{}, {:.1} s) | {} | {:.2} ms |",
            self.strategy,
            Row::yes_no(self.survives_round_robin),
            Row::yes_no(self.survives_instance_loss),
            self.concurrent_landed,
            self.concurrent_errors,
            if self.error_statuses.is_empty() {
                String::new()
            } else {
                format!(": HTTP {:?}", self.error_statuses)
            },
            self.concurrent_time.as_secs_f64(),
            self.cookie_bytes,
            self.cart_get_p50.as_secs_f64() * 1000.0,
        );
        say(&format!("strategy row: {line}"));
        let dir = artifacts_dir().join("strategies");
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        let json = json!({
            "strategy": self.strategy,
            "survives_round_robin": self.survives_round_robin,
            "survives_instance_loss": self.survives_instance_loss,
            "concurrent_landed": self.concurrent_landed,
            "concurrent_total": CONCURRENT,
            "concurrent_errors": self.concurrent_errors,
            "concurrent_seconds": self.concurrent_time.as_secs_f64(),
            "cookie_bytes": self.cookie_bytes,
            "cart_get_p50_ms": self.cart_get_p50.as_secs_f64() * 1000.0,
            "markdown": line,
        });
        let path = dir.join(format!("{}.json", self.strategy.replace([' ', '+'], "_")));
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).expect("write row");
    }
}

/// Six SKUs added one by one, each followed by three reads of the cart:
/// whether every read showed the cart so far.
async fn round_robin(client: &ShopClient) -> bool {
    let mut expected = Vec::new();
    let mut kept = true;
    for i in 0..6 {
        let sku = format!("SKU-{i:04}");
        client.add(&sku).await;
        expected.push(sku);
        for _ in 0..3 {
            kept &= client.skus().await == expected;
        }
    }
    kept
}

/// The size of the `Cookie` header, and the median time of `GET
/// /api/cart`, with the cart of [`round_robin`].
async fn measure_reads(client: &ShopClient, row: &mut Row) {
    row.cookie_bytes = client.cookie_header("/api/cart").len();
    row.cart_get_p50 = median_latency(100, || async {
        let res = client
            .http
            .get(client.url("/api/cart"))
            .send()
            .await
            .expect("get cart");
        assert_eq!(res.status(), StatusCode::OK);
        res.bytes().await.expect("body");
    })
    .await;
}

/// [`CONCURRENT`] adds of distinct SKUs at once, by a fresh browser whose
/// session exists already: how many landed in the cart, and how many
/// requests failed.
async fn concurrent_adds(base: &str) -> (usize, usize, Vec<u16>, Duration) {
    let client = ShopClient::new(base);
    // The session (and, behind a sticky balancer, the instance) first.
    client.add("SKU-0399").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CONCURRENT));
    let mut tasks = Vec::with_capacity(CONCURRENT);
    let start = std::time::Instant::now();
    for i in 0..CONCURRENT {
        let client = client.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let (status, _) = client
                .post_json("/api/cart/items", &json!({ "sku": format!("SKU-{i:04}") }))
                .await;
            status
        }));
    }
    let mut errors = 0;
    let mut statuses = Vec::new();
    for task in tasks {
        let status = task.await.expect("task");
        if !status.is_success() {
            errors += 1;
            if !statuses.contains(&status.as_u16()) {
                statuses.push(status.as_u16());
            }
        }
    }
    let took = start.elapsed();
    let landed = client
        .skus()
        .await
        .iter()
        .filter(|s| *s != "SKU-0399")
        .count();
    (landed, errors, statuses, took)
}

/// Measures the reads of `client` and the concurrent adds through `base`
/// into `row`.
async fn measure(client: &ShopClient, base: &str, row: &mut Row) {
    measure_reads(client, row).await;
    (
        row.concurrent_landed,
        row.concurrent_errors,
        row.error_statuses,
        row.concurrent_time,
    ) = concurrent_adds(base).await;
}

/// After killing instance 1 (and a moment for HAProxy to notice), whether
/// three reads still show `expected`; then after restarting it.
async fn instance_loss(fleet: &mut Fleet, client: &ShopClient, expected: &[String]) -> bool {
    fleet.shops[1].kill().await;
    let mut kept = true;
    for _ in 0..3 {
        kept &= client.skus().await == expected;
    }
    fleet.shops[1].restart().await;
    fleet.lb.wait_healthy(3).await;
    for _ in 0..3 {
        kept &= client.skus().await == expected;
    }
    kept
}

fn six() -> Vec<String> {
    (0..6).map(|i| format!("SKU-{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_round_robin_loses_the_cart() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start(
        3,
        &[("SESSION_STORE", "memory"), INSECURE],
        Balance::RoundRobin,
    )
    .await;
    let client = ShopClient::new(fleet.url());
    client.add("SKU-0001").await;
    let mut seen = 0;
    for _ in 0..3 {
        if client.skus().await == ["SKU-0001"] {
            seen += 1;
        }
    }
    // Only the instance that holds the session shows the cart.
    assert_eq!(
        seen, 1,
        "in-process sessions should be visible on one instance of three"
    );
    let mut row = Row {
        strategy: "memory, round-robin",
        survives_round_robin: Some(false),
        survives_instance_loss: Some(false),
        ..Row::default()
    };
    measure(&client, &fleet.url(), &mut row).await;
    row.report();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_with_stickiness_survives_until_its_instance_dies() {
    let _serial = SERIAL.lock().await;
    let mut fleet =
        Fleet::start(3, &[("SESSION_STORE", "memory"), INSECURE], Balance::Sticky).await;
    let client = ShopClient::new(fleet.url());
    let res = client
        .http
        .post(client.url("/api/cart/items"))
        .json(&json!({ "sku": "SKU-0000" }))
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
        assert_eq!(client.skus().await, ["SKU-0000"], "sticky cart lost");
    }
    let mut row = Row {
        strategy: "memory, sticky",
        ..Row::default()
    };
    // The rest of the standard cart, always on the same instance.
    let mut expected = vec!["SKU-0000".to_owned()];
    for sku in &six()[1..] {
        client.add(sku).await;
        expected.push(sku.clone());
        assert_eq!(client.skus().await, expected, "sticky cart lost");
    }
    row.survives_round_robin = Some(true);
    measure(&client, &fleet.url(), &mut row).await;

    fleet.shops[server].kill().await;
    // HAProxy moves the client to a healthy instance, which has no cart.
    let after = client.skus().await;
    row.survives_instance_loss = Some(after == expected);
    row.report();
    assert_eq!(
        after,
        Vec::<String>::new(),
        "the cart should be gone with its instance"
    );
    assert_eq!(
        row.concurrent_landed, CONCURRENT,
        "one instance serializes the adds"
    );
}

/// The common scenario of the strategies that keep the cart outside the
/// instances: round-robin, measurements, instance loss.
async fn shared_strategy(strategy: &'static str, env: &[(&str, &str)]) -> Row {
    let _serial = SERIAL.lock().await;
    let mut fleet = Fleet::start(3, env, Balance::RoundRobin).await;
    let client = ShopClient::new(fleet.url());
    let mut row = Row {
        strategy,
        ..Row::default()
    };
    row.survives_round_robin = Some(round_robin(&client).await);
    measure(&client, &fleet.url(), &mut row).await;
    // One more item while an instance is down, then after its restart.
    let mut expected = six();
    row.survives_instance_loss = Some(instance_loss(&mut fleet, &client, &expected).await);
    client.add("SKU-0100").await;
    expected.push("SKU-0100".into());
    assert_eq!(
        client.skus().await,
        expected,
        "{strategy}: add after restart"
    );
    row.report();
    row
}

/// Asserts what a shared store must give: the cart survives round robin
/// and the loss of an instance, and no concurrent add is lost.
fn assert_survives_everything(row: &Row) {
    assert_eq!(row.survives_round_robin, Some(true), "{row:?}");
    assert_eq!(row.survives_instance_loss, Some(true), "{row:?}");
    assert_eq!(
        (row.concurrent_landed, row.concurrent_errors),
        (CONCURRENT, 0),
        "no concurrent add may be lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_store_survives_round_robin_and_instance_loss() {
    let keys = session_stores::cookie::Key::generate().to_base64();
    let row = shared_strategy(
        "cookie",
        &[
            ("SESSION_STORE", "cookie"),
            ("COOKIE_KEYS", keys.as_str()),
            INSECURE,
        ],
    )
    .await;
    assert_eq!(row.survives_round_robin, Some(true), "{row:?}");
    assert_eq!(row.survives_instance_loss, Some(true), "{row:?}");
    // Last writer wins: concurrent adds overwrite each other's cookie.
    assert!(row.concurrent_landed < CONCURRENT, "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_survives_round_robin_instance_loss_and_concurrent_adds() {
    let url = redis::shared_url();
    require_server("REDIS_URL", &url).await;
    let row = shared_strategy(
        "redis",
        &[
            ("SESSION_STORE", "redis"),
            ("REDIS_URL", url.as_str()),
            ("SESSION_MAX_ATTEMPTS", "100000"),
            INSECURE,
        ],
    )
    .await;
    assert_survives_everything(&row);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_survives_round_robin_instance_loss_and_concurrent_adds() {
    let endpoint = dynalite::shared_endpoint();
    require_server("DYNAMODB_ENDPOINT", &endpoint).await;
    // Session IDs are random: one table serves every run.
    let mut env = dynalite::shared_shop_env("shop_e2e_sessions");
    env.extend([
        ("SESSION_MAX_ATTEMPTS", "100000".to_owned()),
        // The emulator answers one request at a time: under 200 writers
        // of one item a call can queue for seconds.
        ("SESSION_STORE_TIMEOUT_MS", "150000".to_owned()),
        (INSECURE.0, INSECURE.1.to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let row = shared_strategy("dynamodb", &env).await;
    assert_survives_everything(&row);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_store_survives_round_robin_instance_loss_and_concurrent_adds() {
    let urls = memcached::shared_urls();
    for node in memcached::shared_nodes() {
        require_server("MEMCACHED_URLS", &node).await;
    }
    let row = shared_strategy(
        "memcached",
        &[
            ("SESSION_STORE", "memcached"),
            ("MEMCACHED_URLS", urls.as_str()),
            ("SESSION_MAX_ATTEMPTS", "100000"),
            INSECURE,
        ],
    )
    .await;
    assert_survives_everything(&row);
}
