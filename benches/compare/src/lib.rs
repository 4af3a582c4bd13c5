//! What both benchmark binaries share: the cart, the command line, the
//! session selector in front of the app, the server and the concurrent-add
//! probe.
//!
//! Each binary (`ours`, `theirs`) only supplies its three handlers and its
//! session layer; everything else, the cart logic included, is here, so the
//! two apps differ in nothing but the session library.
//!
//! ```text
//! ours   serve --store redis --port 3001 --sessions 1000
//! theirs probe --store redis --adds 64
//! ```
//!
//! `serve` fills `--sessions` sessions with a 20-line cart through the app
//! itself, prints one `READY {...}` JSON line and serves until killed.
//! Requests choose a pre-filled session with `?u=<n>` (see [`selector`]), so
//! a load generator that sends one fixed cookie can still spread its load
//! over many sessions. `probe` starts the app on a free port, sends
//! `--adds` concurrent adds of distinct items to one session over real TCP
//! connections and prints how many lines arrived.
#![deny(unsafe_code)]
#![allow(clippy::print_stdout, reason = "the binaries report on stdout")]

pub mod actix_front;
pub mod heap;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// The session key holding the cart.
pub const CART_KEY: &str = "cart";
/// Lines in a pre-filled cart unless `BENCH_CART_LINES` says otherwise.
pub const SEED_LINES: usize = 20;

/// Lines in a pre-filled cart: `BENCH_CART_LINES` (at least 1), or
/// [`SEED_LINES`]. `scripts/bench.sh` sets it for its cart-size series.
pub fn seed_lines() -> usize {
    static LINES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LINES.get_or_init(|| {
        std::env::var("BENCH_CART_LINES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(SEED_LINES, |n| n.max(1))
    })
}
/// The SKU the load run's adds use: a line of every pre-filled cart, so an
/// add raises its quantity and the cart keeps its size however long the
/// run.
pub const LOAD_SKU: &str = "SKU-000007";

/// One cart line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Stock-keeping unit, unique within a cart.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Quantity.
    pub qty: u32,
    /// Unit price in cents.
    pub price_cents: u32,
}

/// The cart as kept in the session: its lines.
pub type Cart = Vec<Line>;

/// A line for `sku` as the catalogue would describe it.
fn catalogue_line(sku: &str) -> Line {
    let n: u32 = sku
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    Line {
        sku: sku.to_owned(),
        name: format!("Item {}", n % 10_000),
        qty: 1,
        price_cents: 500 + n % 9_500,
    }
}

/// A cart of [`seed_lines`] lines; with the default 20, about 1.3 KB as
/// JSON: small enough that both libraries' cookie stores can carry it
/// within 4 KB.
pub fn seed_cart() -> Cart {
    (0..seed_lines())
        .map(|i| catalogue_line(&format!("SKU-{i:06}")))
        .collect()
}

/// The cart after adding one `sku`: one more of it if the cart has the line,
/// a new line otherwise. Both binaries' add handlers call this.
pub fn add_to_cart(cart: Option<Cart>, sku: &str) -> Cart {
    let mut cart = cart.unwrap_or_default();
    match cart.iter_mut().find(|l| l.sku == sku) {
        Some(line) => line.qty += 1,
        None => cart.push(catalogue_line(sku)),
    }
    cart
}

/// Query of `POST /cart/items`.
#[derive(Debug, Deserialize)]
pub struct AddItem {
    /// The SKU to add.
    pub sku: String,
}

/// The store a binary runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// In-process.
    Memory,
    /// Sealed in the cookie.
    Cookie,
    /// Redis (`REDIS_URL`).
    Redis,
    /// Redis with ours' near cache; tower-sessions has none, so `theirs`
    /// runs its plain Redis store here.
    RedisNear,
    /// DynamoDB (`DYNAMODB_ENDPOINT`, `AWS_*`).
    DynamoDb,
    /// Memcached (`MEMCACHED_URLS`); ours only: tower-sessions has no
    /// Memcached store, so the bench compares it with ours on Redis.
    Memcached,
}

impl StoreKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "memory" => StoreKind::Memory,
            "cookie" => StoreKind::Cookie,
            "redis" => StoreKind::Redis,
            "redis-near" => StoreKind::RedisNear,
            "dynamodb" => StoreKind::DynamoDb,
            "memcached" => StoreKind::Memcached,
            _ => return None,
        })
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Cookie => "cookie",
            StoreKind::Redis => "redis",
            StoreKind::RedisNear => "redis-near",
            StoreKind::DynamoDb => "dynamodb",
            StoreKind::Memcached => "memcached",
        }
    }

    /// Whether the session lives in the cookie (so the client, not the
    /// server, decides which write survives).
    pub fn client_side(self) -> bool {
        self == StoreKind::Cookie
    }
}

/// `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `MEMCACHED_URLS`, or the two local nodes of `scripts/services.sh`.
pub fn memcached_urls() -> String {
    std::env::var("MEMCACHED_URLS").unwrap_or_else(|_| "127.0.0.1:11211,127.0.0.1:11212".into())
}

/// A DynamoDB client for `DYNAMODB_ENDPOINT` (default the local emulator on
/// port 8000), with region and credentials from the environment. Both
/// binaries use this same client configuration.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let endpoint =
        std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// What a binary was asked to do.
#[derive(Debug)]
pub enum Mode {
    /// Pre-fill `sessions` sessions and serve on `port` (0: any free one).
    Serve {
        /// The port to listen on.
        port: u16,
        /// Pre-filled sessions.
        sessions: usize,
    },
    /// The concurrent-add probe with `adds` adds.
    Probe {
        /// Concurrent adds.
        adds: usize,
    },
}

/// The command line of every binary.
#[derive(Debug)]
pub struct Args {
    /// The store to run on.
    pub store: StoreKind,
    /// Serve or probe.
    pub mode: Mode,
}

/// The command line, or exit with the usage on a bad one.
pub fn args_or_exit() -> Args {
    match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    }
}

const USAGE: &str = "usage: <bin> serve --store memory|cookie|redis|redis-near|dynamodb|memcached [--port N] [--sessions N]\n       <bin> probe --store memory|cookie|redis|redis-near|dynamodb|memcached [--adds N]";

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("missing mode")?;
    let (mut store, mut port, mut sessions, mut adds) = (None, 0u16, 1000usize, 64usize);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--store" => {
                store =
                    Some(StoreKind::parse(&value).ok_or_else(|| format!("unknown store {value}"))?)
            }
            "--port" => port = value.parse().map_err(bad)?,
            "--sessions" => sessions = value.parse().map_err(bad)?,
            "--adds" => adds = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let store = store.ok_or("missing --store")?;
    let mode = match mode.as_str() {
        "serve" => Mode::Serve {
            port,
            sessions: sessions.max(1),
        },
        "probe" => Mode::Probe { adds: adds.max(1) },
        other => return Err(format!("unknown mode {other}")),
    };
    Ok(Args { store, mode })
}

/// The entry point of both binaries: `build` makes the cart app (routes
/// `GET /cart`, `POST /cart/items?sku=…`, `POST /cart/seed`, with its
/// session layer) for a store.
pub fn main_with<F, Fut>(implementation: &'static str, build: F)
where
    F: FnOnce(StoreKind) -> Fut,
    Fut: Future<Output = Router>,
{
    let args = args_or_exit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let app = build(args.store).await;
        match args.mode {
            Mode::Serve { port, sessions } => {
                serve(implementation, args.store, app, port, sessions).await
            }
            Mode::Probe { adds } => probe(implementation, args.store, app, adds).await,
        }
    });
}

/// Cookie headers of the pre-filled sessions, indexed by `?u=`.
pub type Sessions = Arc<OnceLock<Vec<HeaderValue>>>;

/// The cookie of the pre-filled session a query's `u=<n>` names (modulo
/// their number), if any.
pub fn selected_cookie<'a>(sessions: &'a Sessions, query: Option<&str>) -> Option<&'a HeaderValue> {
    let u = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("u="))
            .and_then(|n| n.parse::<usize>().ok())
    })?;
    let cookies = sessions.get().filter(|c| !c.is_empty())?;
    Some(&cookies[u % cookies.len()])
}

/// The session selector: a request whose query has `u=<n>` is given the
/// cookie of pre-filled session `n` (modulo their number), as if that
/// user's browser had sent it. It runs in front of the session layer, the
/// same in every binary, and costs a query scan and a header insert.
pub fn selector(sessions: Sessions, mut req: Request<Body>) -> Request<Body> {
    if let Some(cookie) = selected_cookie(&sessions, req.uri().query()).cloned() {
        req.headers_mut().insert(COOKIE, cookie);
    }
    req
}

/// Figures a binary adds to its `READY` line (e.g. the size of its stored
/// record), set before it serves.
static EXTRA: Mutex<Vec<(&'static str, serde_json::Value)>> = Mutex::new(Vec::new());

/// Adds `key: value` to the `READY` line.
pub fn report(key: &'static str, value: impl Into<serde_json::Value>) {
    EXTRA.lock().expect("report lock").push((key, value.into()));
}

/// Sums, over the pre-filled carts read back, the lines and the quantity
/// of [`LOAD_SKU`]: the body of `GET /bench/total`.
#[derive(Debug, Default)]
pub struct Tally {
    sessions: usize,
    lines: usize,
    qty: u64,
    failed: usize,
}

impl Tally {
    /// Counts one cart read back: its status was a success or not, its body.
    pub fn add(&mut self, ok: bool, body: &[u8]) {
        self.sessions += 1;
        match serde_json::from_slice::<Cart>(body) {
            Ok(cart) if ok => {
                self.lines += cart.len();
                self.qty += cart
                    .iter()
                    .filter(|l| l.sku == LOAD_SKU)
                    .map(|l| u64::from(l.qty))
                    .sum::<u64>();
            }
            _ => self.failed += 1,
        }
    }

    /// The JSON answer.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "sessions": self.sessions,
            "lines": self.lines,
            "qty": self.qty,
            "failed": self.failed,
        })
    }
}

/// What pre-filling found: the time it took, the longest cookie and the
/// body of a pre-filled cart read back.
pub(crate) struct Prefilled {
    seed_ms: u64,
    cookie_bytes: usize,
    cart_json: Vec<u8>,
}

/// Pre-fills `count` sessions with `seed_one` (one `POST /cart/seed`: its
/// status and `Set-Cookie` pair) while counting the heap they hold, keeps
/// their cookies in `sessions`, then reads pre-filled cart 0 back with
/// `read_back` (its status and body) and checks it.
pub(crate) async fn prefill<S, SF, R, RF>(
    sessions: &Sessions,
    count: usize,
    mut seed_one: S,
    read_back: R,
) -> Prefilled
where
    S: FnMut() -> SF,
    SF: Future<Output = (u16, Option<String>)>,
    R: FnOnce() -> RF,
    RF: Future<Output = (u16, Vec<u8>)>,
{
    let started = Instant::now();
    let heap_before = heap::track();
    let mut cookies = Vec::with_capacity(count);
    for _ in 0..count {
        let (status, cookie) = seed_one().await;
        assert!((200..300).contains(&status), "seeding answered {status}");
        let cookie = cookie.expect("seeding sets the session cookie");
        cookies.push(HeaderValue::from_str(&cookie).expect("cookie header"));
    }
    let grown = heap::untrack(heap_before);
    report("heap_bytes_per_session", heap_per_session(grown, &cookies));
    let seed_ms = started.elapsed().as_millis() as u64;
    let cookie_bytes = cookies.iter().map(HeaderValue::len).max().unwrap_or(0);
    sessions.set(cookies).expect("set once");
    let (status, cart_json) = read_back().await;
    let lines = serde_json::from_slice::<Cart>(&cart_json).map_or(0, |c| c.len());
    assert!(
        (200..300).contains(&status) && lines == seed_lines(),
        "a pre-filled cart reads back as {status} with {lines} lines"
    );
    Prefilled {
        seed_ms,
        cookie_bytes,
        cart_json,
    }
}

/// The `READY` line's JSON: what every binary reports, plus [`report`]ed
/// figures.
pub(crate) fn ready_line(
    implementation: &str,
    store: StoreKind,
    port: u16,
    count: usize,
    filled: &Prefilled,
) -> String {
    let mut ready = serde_json::json!({
        "impl": implementation,
        "store": store.name(),
        "port": port,
        "sessions": count,
        "cart_lines": seed_lines(),
        "cart_json_bytes": filled.cart_json.len(),
        "cookie_bytes": filled.cookie_bytes,
        "seed_ms": filled.seed_ms,
    });
    for (k, v) in EXTRA.lock().expect("report lock").iter() {
        ready[*k] = v.clone();
    }
    format!("READY {ready}")
}

/// `name=value` of the first `Set-Cookie` header.
pub fn cookie_pair(set_cookie: &str) -> Option<&str> {
    set_cookie.split(';').next().map(str::trim)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>, Vec<u8>) {
    let res = app.clone().oneshot(req).await.expect("infallible router");
    let status = res.status();
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(cookie_pair)
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body")
        .to_vec();
    (status, cookie, body)
}

fn request(method: &str, uri: &str, cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.clone());
    }
    req
}

#[derive(Clone)]
struct Admin {
    app: Router,
    sessions: Sessions,
}

/// `GET /bench/total`: over all pre-filled sessions, the number of lines
/// and the total quantity of [`LOAD_SKU`], read through the app. The load
/// run compares the quantity's growth with the number of adds answered.
async fn total(State(admin): State<Admin>) -> axum::Json<serde_json::Value> {
    let cookies = admin.sessions.get().cloned().unwrap_or_default();
    let mut tally = Tally::default();
    for cookie in &cookies {
        let (status, _, body) = call(&admin.app, request("GET", "/cart", Some(cookie))).await;
        tally.add(status.is_success(), &body);
    }
    axum::Json(tally.json())
}

/// Heap bytes the pre-filled sessions hold per session: the live heap's
/// growth while seeding, less the cookies the bench itself keeps (in a
/// vector allocated for exactly their number).
fn heap_per_session(grown: isize, cookies: &[HeaderValue]) -> f64 {
    let kept: usize =
        cookies.iter().map(HeaderValue::len).sum::<usize>() + std::mem::size_of_val(cookies);
    (grown - kept as isize) as f64 / cookies.len().max(1) as f64
}

async fn serve(
    implementation: &'static str,
    store: StoreKind,
    app: Router,
    port: u16,
    count: usize,
) {
    let sessions: Sessions = Arc::default();
    let selecting = {
        let sessions = sessions.clone();
        app.layer(tower::util::MapRequestLayer::new(move |req| {
            selector(sessions.clone(), req)
        }))
    };

    // Pre-fill through the app itself, as a client would.
    let filled = prefill(
        &sessions,
        count,
        || async {
            let (status, cookie, _) = call(&selecting, request("POST", "/cart/seed", None)).await;
            (status.as_u16(), cookie)
        },
        || async {
            let (status, _, body) = call(&selecting, request("GET", "/cart?u=0", None)).await;
            (status.as_u16(), body)
        },
    )
    .await;

    let admin = Router::new()
        .route("/bench/total", get(total))
        .with_state(Admin {
            app: selecting.clone(),
            sessions: sessions.clone(),
        });
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the port");
    let port = listener.local_addr().expect("address").port();
    println!(
        "{}",
        ready_line(implementation, store, port, count, &filled)
    );
    axum::serve(listener, admin.merge(selecting))
        .await
        .expect("server");
}

/// One HTTP/1.1 request on its own connection (`Connection: close`):
/// status, `name=value` of its `Set-Cookie`, body.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> std::io::Result<(u16, Option<String>, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let mut set_cookie = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("set-cookie") && set_cookie.is_none() {
            set_cookie = cookie_pair(value.trim()).map(str::to_owned);
        }
        if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or_else(bad)?;
    }
    Ok((status, set_cookie, body))
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).ok()?.trim(), 16).ok()?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// Sends `adds` concurrent adds of distinct items to one pre-filled session
/// and counts the lines that arrived. For a client-side store the client
/// keeps the cookie of the response that arrived last, as a browser does.
async fn probe(implementation: &'static str, store: StoreKind, app: Router, adds: usize) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    probe_port(implementation, store, port, adds).await;
}

/// The probe against an app already serving on `port`.
pub async fn probe_port(implementation: &str, store: StoreKind, port: u16, adds: usize) {
    let (status, cookie, _) = http(port, "POST", "/cart/seed", None)
        .await
        .expect("seed request");
    assert!((200..300).contains(&status), "seeding answered {status}");
    let cookie: Arc<str> = cookie.expect("seeding sets the session cookie").into();

    let barrier = Arc::new(tokio::sync::Barrier::new(adds));
    let started = Instant::now();
    let tasks: Vec<_> = (0..adds)
        .map(|i| {
            let barrier = barrier.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let path = format!("/cart/items?sku=PROBE-{i:04}");
                let res = http(port, "POST", &path, Some(&cookie)).await;
                (res, Instant::now())
            })
        })
        .collect();
    let mut ok = 0usize;
    let mut errors = Vec::new();
    let mut last: Option<(Instant, String)> = None;
    for task in tasks {
        let (res, at) = task.await.expect("probe task");
        match res {
            Ok((status, set_cookie, _)) if (200..300).contains(&status) => {
                ok += 1;
                if let Some(c) = set_cookie
                    && last.as_ref().is_none_or(|(t, _)| at >= *t)
                {
                    last = Some((at, c));
                }
            }
            Ok((status, _, _)) => errors.push(status.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    // Server-side stores keep the ID; a client-side store's state is the
    // cookie the client kept.
    let final_cookie = match (&last, store.client_side()) {
        (Some((_, c)), true) => c.clone(),
        _ => cookie.to_string(),
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, body) = http(port, "GET", "/cart", Some(&final_cookie))
        .await
        .expect("read-back request");
    let cart: Cart = serde_json::from_slice(&body).unwrap_or_default();
    let arrived = cart.iter().filter(|l| l.sku.starts_with("PROBE-")).count();
    println!(
        "{}",
        serde_json::json!({
            "impl": implementation,
            "store": store.name(),
            "adds": adds,
            "answered_ok": ok,
            "errors": errors,
            "read_status": status,
            "lines_arrived": arrived,
            "lost": ok.saturating_sub(arrived),
            "ms": elapsed.as_millis() as u64,
        })
    );
}

/// The JSON body of `cart`, as every app answers it.
pub fn cart_json(cart: &[Line]) -> Vec<u8> {
    serde_json::to_vec(cart).expect("a cart serializes")
}

/// A JSON response of `cart`.
pub fn cart_response(cart: &[Line]) -> axum::response::Response {
    let body = cart_json(cart);
    let mut res = axum::response::Response::new(Body::from(body));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The response to a session failure.
pub fn failure(status: StatusCode, what: impl std::fmt::Display) -> axum::response::Response {
    let mut res = axum::response::Response::new(Body::from(what.to_string()));
    *res.status_mut() = status;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_raises_quantity_or_appends() {
        let cart = seed_cart();
        assert_eq!(cart.len(), SEED_LINES);
        let more = add_to_cart(Some(cart.clone()), LOAD_SKU);
        assert_eq!(more.len(), SEED_LINES);
        let line = more.iter().find(|l| l.sku == LOAD_SKU).unwrap();
        assert_eq!(line.qty, 2);
        let more = add_to_cart(Some(cart), "NEW");
        assert_eq!(more.len(), SEED_LINES + 1);
        assert_eq!(add_to_cart(None, "A").len(), 1);
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
    }
}
