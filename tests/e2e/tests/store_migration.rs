//! Moving a running fleet between session stores by rolling restart, with
//! no log-out: three shops behind HAProxy are restarted one at a time from
//! their old configuration onto `SESSION_MIGRATION_PHASE=read-both`, then
//! one at a time onto `move`, while browsers keep adding to their carts.
//!
//! - cookie store → Redis (each browser one request at a time: the cookie
//!   store is last-writer-wins between a browser's concurrent requests
//!   before the migration already);
//! - Redis → DynamoDB (the shared dynalite), two requests of each browser
//!   in flight at once.
//!
//! Every session made before the migration survives with its cart; every
//! acknowledged add is in the cart (no lost update) and no add appears
//! that was not sent; every cart a browser reads holds at least what it
//! read before; and at the end the stores themselves hold each session
//! once: in the new store, with the data the shop serves, and in the old
//! one at most a *moved* marker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::client::ShopClient;
use e2e::faults;
use session_core::store::Record;
use session_core::{Id, Migration, SessionStore};
use session_stores::RedisStore;
use shop::{CART_KEY, Cart};
use test_support::env::{require_server, service_env};
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::names::unique;
use test_support::say;

const INSTANCES: usize = 3;
const BROWSERS: usize = 10;
/// Adds per load loop at most, so no SKU reaches the cart's quantity cap.
const MAX_ADDS: usize = 240;
const SKUS: [&str; 8] = [
    "SKU-0001", "SKU-0002", "SKU-0003", "SKU-0004", "SKU-0005", "SKU-0006", "SKU-0007", "SKU-0008",
];
const COOKIE: &str = "shop_session";

/// Quantities by SKU.
type Counts = BTreeMap<String, u32>;

/// What one browser sent and was told.
#[derive(Default)]
struct Ledger {
    /// Adds sent (acknowledged or not).
    tried: Counts,
    /// Adds answered `200`.
    acked: Counts,
    /// What went wrong, for the final assertion.
    violations: Vec<String>,
}

fn quantities(cart: &serde_json::Value) -> Counts {
    let mut counts = Counts::new();
    for line in cart["items"].as_array().into_iter().flatten() {
        if let (Some(sku), Some(qty)) = (line["sku"].as_str(), line["qty"].as_u64()) {
            counts.insert(sku.to_owned(), qty as u32);
        }
    }
    counts
}

/// `at_least ≤ seen ≤ at_most`, SKU by SKU; the first breach.
fn within(seen: &Counts, at_least: &Counts, at_most: &Counts) -> Option<String> {
    for (sku, n) in at_least {
        let got = seen.get(sku).copied().unwrap_or(0);
        if got < *n {
            return Some(format!("{sku}: {got} < {n}"));
        }
    }
    for (sku, got) in seen {
        let n = at_most.get(sku).copied().unwrap_or(0);
        if *got > n {
            return Some(format!("{sku}: {got} > {n} sent"));
        }
    }
    None
}

/// One load loop of a browser: add, read the cart, repeat, until `stop`.
async fn load(browser: ShopClient, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>, lane: usize) {
    let mut last_read = Counts::new();
    for n in 0..MAX_ADDS {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let sku = SKUS[(n + lane) % SKUS.len()];
        *ledger
            .lock()
            .unwrap()
            .tried
            .entry(sku.to_owned())
            .or_default() += 1;
        let probe = faults::add(&browser, sku).await;
        if probe.status == Some(200) {
            *ledger
                .lock()
                .unwrap()
                .acked
                .entry(sku.to_owned())
                .or_default() += 1;
        }
        let acked_before = ledger.lock().unwrap().acked.clone();
        let read = faults::get(&browser, "/api/cart").await;
        if read.status != Some(200) {
            // An instance killed mid-request; HAProxy answers for it.
            continue;
        }
        let seen = quantities(&read.body);
        {
            let mut ledger = ledger.lock().unwrap();
            if let Some(breach) = within(&seen, &acked_before, &ledger.tried) {
                ledger
                    .violations
                    .push(format!("lane {lane} read: {breach}"));
            }
            if let Some(breach) = within(&seen, &last_read, &ledger.tried) {
                ledger
                    .violations
                    .push(format!("lane {lane}: the cart went back: {breach}"));
            }
        }
        last_read = seen;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// The value of the session cookie `browser` holds.
fn session_cookie(browser: &ShopClient) -> String {
    browser
        .cookie_header("/")
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")))
        .expect("a session cookie")
        .to_owned()
}

/// The shop's sessions in the Redis at `url`, to look at the records.
async fn shop_redis(url: &str) -> RedisStore {
    RedisStore::builder()
        .with_key_prefix("shop:session:")
        .connect(url)
        .await
        .expect("the shared Redis")
}

/// The cart a stored record holds.
fn stored_cart(record: &Record) -> Counts {
    let cart: Cart = record
        .data
        .get(CART_KEY)
        .map(|v| v.get().expect("a cart"))
        .unwrap_or_default();
    cart.items.into_iter().map(|l| (l.sku, l.qty)).collect()
}

/// Runs the migration of a fleet started with `before`, restarted onto
/// `read_both`, then onto `moving`, under load of `lanes` request loops
/// per browser. Returns each browser with the cart it has at the end.
async fn migrate(
    name: &str,
    before: &[(&str, &str)],
    read_both: &[(&str, &str)],
    moving: &[(&str, &str)],
    lanes: usize,
) -> Vec<(ShopClient, Counts)> {
    let mut fleet = Fleet::start(INSTANCES, before, Balance::RoundRobin).await;
    let browsers: Vec<ShopClient> = (0..BROWSERS)
        .map(|_| ShopClient::new(fleet.url()))
        .collect();
    let ledgers: Vec<Arc<Mutex<Ledger>>> = browsers.iter().map(|_| Arc::default()).collect();
    // Sessions made before the migration.
    for (browser, ledger) in browsers.iter().zip(&ledgers) {
        for sku in &SKUS[..3] {
            browser.add(sku).await;
            let mut ledger = ledger.lock().unwrap();
            *ledger.tried.entry((*sku).to_owned()).or_default() += 1;
            *ledger.acked.entry((*sku).to_owned()).or_default() += 1;
        }
    }
    let first_cookies: Vec<String> = browsers.iter().map(session_cookie).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for (browser, ledger) in browsers.iter().zip(&ledgers) {
        for lane in 0..lanes {
            loops.push(tokio::spawn(load(
                browser.clone(),
                ledger.clone(),
                stop.clone(),
                lane,
            )));
        }
    }
    for (phase, env) in [("read-both", read_both), ("move", moving)] {
        for (i, shop) in fleet.shops.iter_mut().enumerate() {
            say(&format!("{name}: instance {i} onto {phase}"));
            shop.restart_with(env).await;
            fleet.lb.wait_healthy(INSTANCES).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        l.await.expect("a load loop");
    }

    let mut out = Vec::new();
    for (i, (browser, ledger)) in browsers.into_iter().zip(&ledgers).enumerate() {
        let cart = quantities(&browser.get_json("/api/cart").await);
        let ledger = ledger.lock().unwrap();
        assert!(
            ledger.violations.is_empty(),
            "{name}: browser {i} (first cookie {}): {:?}",
            first_cookies[i],
            ledger.violations
        );
        let acked: u32 = ledger.acked.values().sum();
        assert!(acked >= 13, "{name}: browser {i}: only {acked} adds landed");
        if let Some(breach) = within(&cart, &ledger.acked, &ledger.tried) {
            panic!("{name}: browser {i}'s final cart: {breach}");
        }
        out.push((browser, cart));
    }
    say(&format!("{name}: every session survived, no update lost"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cookie_store_fleet_moves_to_redis_by_rolling_restart() {
    let redis_url = service_env("REDIS_URL");
    require_server("REDIS_URL", &redis_url).await;
    let keys = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let before = [
        ("SESSION_STORE", "cookie"),
        ("COOKIE_KEYS", keys),
        ("COOKIE_SECURE", "false"),
    ];
    let read_both = [
        ("SESSION_STORE", "redis"),
        ("REDIS_URL", redis_url.as_str()),
        ("SESSION_MIGRATE_FROM", "cookie"),
        ("OLD_COOKIE_KEYS", keys),
        ("SESSION_MIGRATION_PHASE", "read-both"),
    ];
    let moving = [("SESSION_MIGRATION_PHASE", "move")];
    let browsers = migrate("cookie → redis", &before, &read_both, &moving, 1).await;

    let store = shop_redis(&redis_url).await;
    for (i, (browser, cart)) in browsers.iter().enumerate() {
        // The browser now holds an ID cookie naming the moved session.
        let cookie = session_cookie(browser);
        let id =
            Id::parse(&cookie).unwrap_or_else(|| panic!("browser {i} still holds a sealed cookie"));
        let record = store
            .load(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("browser {i}'s session is not in Redis"));
        assert_eq!(&stored_cart(&record), cart, "browser {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_fleet_moves_to_dynamodb_by_rolling_restart() {
    let redis_url = service_env("REDIS_URL");
    require_server("REDIS_URL", &redis_url).await;
    let endpoint = service_env("DYNAMODB_ENDPOINT");
    require_server("DYNAMODB_ENDPOINT", &endpoint).await;
    let (key_id, secret, region) = (
        service_env("AWS_ACCESS_KEY_ID"),
        service_env("AWS_SECRET_ACCESS_KEY"),
        service_env("AWS_REGION"),
    );
    let table = unique("migration");
    let aws = [
        ("AWS_ACCESS_KEY_ID", key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ("AWS_REGION", region.as_str()),
        ("COOKIE_SECURE", "false"),
    ];
    let before: Vec<(&str, &str)> = [
        ("SESSION_STORE", "redis"),
        ("REDIS_URL", redis_url.as_str()),
    ]
    .into_iter()
    .chain(aws)
    .collect();
    let read_both = [
        ("SESSION_STORE", "dynamodb"),
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("DYNAMODB_TABLE", table.as_str()),
        ("SESSION_MIGRATE_FROM", "redis"),
        ("OLD_REDIS_URL", redis_url.as_str()),
        ("SESSION_MIGRATION_PHASE", "read-both"),
    ];
    let moving = [("SESSION_MIGRATION_PHASE", "move")];
    let browsers = migrate("redis → dynamodb", &before, &read_both, &moving, 2).await;

    let old = shop_redis(&redis_url).await;
    let new = shop::dynamodb_store(Some(&endpoint), &table, false)
        .await
        .expect("the shop's DynamoDB table");
    for (i, (browser, cart)) in browsers.iter().enumerate() {
        let id = Id::parse(&session_cookie(browser)).expect("an ID cookie");
        let moved = new
            .load(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("browser {i}'s session is not in DynamoDB"));
        assert_eq!(&stored_cart(&moved), cart, "browser {i}");
        // The old store holds no session any more: at most the marker.
        if let Some(left) = old.load(&id).await.unwrap() {
            assert!(
                Migration::is_moved_marker(&left),
                "browser {i}: a live copy is left in Redis"
            );
            assert!(left.version < moved.version, "browser {i}");
        }
    }
}
