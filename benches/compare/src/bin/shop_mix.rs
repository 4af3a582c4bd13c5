//! A mixed workload against the whole shop (`examples/shop`), as a fleet
//! of browsers would drive it: each connection is one signed-in browser
//! with its own session cookie, and each of its requests is, at random,
//! a product page (70 %), a cart read (20 %), an add to the cart (8 %) or
//! a checkout (2 %), one after the other without pause.
//!
//! ```text
//! shop-mix --addr 127.0.0.1:8480 --connections 32 --warmup 3 --seconds 20
//! ```
//!
//! Every browser signs up first; the warm-up starts once all have. It
//! prints one JSON object: requests/s over the measured window, p50 and
//! p99 latency overall and per kind of request, and the requests that
//! were not answered with a success (which a fair run has none of).
//!
//! The HTTP/1.1 client is a small one of its own over one keep-alive
//! connection per browser, so that the generator costs little of the CPU
//! it shares with the shop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The kinds of request, with their share of the mix in percent.
const MIX: [(&str, u32); 4] = [
    ("product page", 70),
    ("cart read", 20),
    ("add", 8),
    ("checkout", 2),
];

/// The shop's catalogue: `SKU-0000` to `SKU-0399`.
const PRODUCTS: u64 = 400;

struct Settings {
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    measure: Duration,
}

fn settings() -> Settings {
    let mut s = Settings {
        addr: "127.0.0.1:8480".parse().expect("an address"),
        connections: 32,
        warmup: Duration::from_secs(3),
        measure: Duration::from_secs(20),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--addr" => s.addr = value.parse().expect("--addr host:port"),
            "--connections" => s.connections = value.parse().expect("--connections N"),
            "--warmup" => s.warmup = Duration::from_secs(value.parse().expect("--warmup S")),
            "--seconds" => s.measure = Duration::from_secs(value.parse().expect("--seconds S")),
            other => panic!("unknown argument {other}"),
        }
    }
    s
}

/// One browser: a keep-alive connection and its cookies.
struct Browser {
    reader: BufReader<TcpStream>,
    host: String,
    cookies: BTreeMap<String, String>,
}

/// One answer: its status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Browser {
    async fn connect(addr: SocketAddr) -> Browser {
        let stream = TcpStream::connect(addr).await.expect("connect to the shop");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Browser {
            reader: BufReader::new(stream),
            host: addr.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, json: Option<&str>) -> Answer {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        if let Some(body) = json {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.reader
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("send a request");
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Answer {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .await
            .expect("a status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.reader.read_line(&mut line).await.expect("a header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().expect("a length"),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "set-cookie" => self.keep_cookie(value),
                _ => {}
            }
        }
        let body = if chunked {
            self.read_chunks().await
        } else {
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).await.expect("a body");
            body
        };
        Answer { status, body }
    }

    async fn read_chunks(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .await
                .expect("a chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("a hex chunk size");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).await.expect("a chunk");
            if size == 0 {
                return body;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }

    fn keep_cookie(&mut self, set_cookie: &str) {
        let pair = stateful_compare::cookie_pair(set_cookie).unwrap_or_default();
        if let Some((name, value)) = pair.split_once('=') {
            let expired = set_cookie.to_ascii_lowercase().contains("max-age=0");
            if expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

/// A small xorshift generator: the mix needs no more.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What one browser measured: latencies in microseconds by kind, and the
/// requests not answered with a success, by kind.
#[derive(Default)]
struct Seen {
    latencies: BTreeMap<&'static str, Vec<u32>>,
    failures: BTreeMap<String, usize>,
}

/// A browser that has signed up (which hashes a password: slow on
/// purpose, so it happens before any timing starts).
async fn signed_in(id: usize, addr: SocketAddr) -> Browser {
    let mut b = Browser::connect(addr).await;
    let email = format!("mix-{}-{id}@example.com", std::process::id());
    let signup = format!(r#"{{"email":"{email}","password":"a long password","name":"Mix"}}"#);
    let a = b.send("POST", "/api/signup", Some(&signup)).await;
    assert!(
        a.status == 200,
        "sign-up answered {}: {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    b
}

async fn browse(id: usize, mut b: Browser, s: &Settings, start: Instant) -> Seen {
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0x2545_F491));
    let mut seen = Seen::default();
    let (measure_from, until) = (start + s.warmup, start + s.warmup + s.measure);
    loop {
        let sent = Instant::now();
        if sent >= until {
            return seen;
        }
        let mut pick = (dice.roll() % 100) as u32;
        let kind = MIX
            .iter()
            .find(|(_, share)| {
                let hit = pick < *share;
                pick = pick.saturating_sub(*share);
                hit
            })
            .map(|(k, _)| *k)
            .expect("the shares add up to 100");
        let sku = format!("SKU-{:04}", dice.roll() % PRODUCTS);
        let a = match kind {
            "product page" => b.send("GET", &format!("/products/{sku}"), None).await,
            "cart read" => b.send("GET", "/api/cart", None).await,
            "add" => {
                let body = format!(r#"{{"sku":"{sku}","qty":1}}"#);
                b.send("POST", "/api/cart/items", Some(&body)).await
            }
            _ => {
                // A checkout needs something in the cart.
                let body = format!(r#"{{"sku":"{sku}","qty":1}}"#);
                b.send("POST", "/api/cart/items", Some(&body)).await;
                b.send("POST", "/api/checkout", Some("{}")).await
            }
        };
        if sent < measure_from {
            continue;
        }
        let took = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        seen.latencies.entry(kind).or_default().push(took);
        if !(200..300).contains(&a.status) {
            *seen
                .failures
                .entry(format!("{kind}: {}", a.status))
                .or_default() += 1;
        }
    }
}

fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let s = std::sync::Arc::new(settings());
    let signing_up: Vec<_> = (0..s.connections)
        .map(|id| tokio::spawn(signed_in(id, s.addr)))
        .collect();
    let mut browsers = Vec::with_capacity(s.connections);
    for b in signing_up {
        browsers.push(b.await.expect("a sign-up"));
    }
    let start = Instant::now();
    let tasks: Vec<_> = browsers
        .into_iter()
        .enumerate()
        .map(|(id, b)| {
            let s = std::sync::Arc::clone(&s);
            tokio::spawn(async move { browse(id, b, &s, start).await })
        })
        .collect();
    let mut all: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let seen = t.await.expect("a browser");
        for (k, v) in seen.latencies {
            all.entry(k).or_default().extend(v);
        }
        for (k, n) in seen.failures {
            *failures.entry(k).or_default() += n;
        }
    }
    let seconds = s.measure.as_secs_f64();
    let mut overall: Vec<u32> = all.values().flatten().copied().collect();
    overall.sort_unstable();
    let mut kinds = serde_json::Map::new();
    for (kind, mut v) in all {
        v.sort_unstable();
        kinds.insert(
            kind.to_owned(),
            serde_json::json!({
                "requests": v.len(),
                "p50_ms": quantile(&v, 0.5),
                "p99_ms": quantile(&v, 0.99),
            }),
        );
    }
    let out = serde_json::json!({
        "requests_per_s": overall.len() as f64 / seconds,
        "requests": overall.len(),
        "p50_ms": quantile(&overall, 0.5),
        "p99_ms": quantile(&overall, 0.99),
        "kinds": kinds,
        "failures": failures,
        "connections": s.connections,
        "seconds": seconds,
    });
    println!("{out}");
}
