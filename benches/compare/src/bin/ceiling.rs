//! The ceiling: the same cart app with no session layer at all.
//!
//! Each pre-filled cart is named by a plain `cart=<n>` cookie that the
//! seeding hands out, so the load generator and `GET /bench/total` drive
//! it exactly as they drive `ours` and `theirs`. What is left is the
//! app's own work (routing, the cookie, the cart's JSON) and, on Redis, one
//! raw `GET` of a value of the cart's size per read through the connection
//! type `RedisStore` uses (`ConnectionManager`):
//!
//! - `--store memory`: the carts in a vector in the process; a read
//!   answers the cart's JSON straight from it, without a copy;
//! - `--store redis`: the cart's JSON under `ceiling:cart:<n>`; a read is
//!   one `GET`, an add a `GET` and a `SET` (no protection against
//!   concurrent adds: this is a speed ceiling, not a session).
//!
//! Run with: `cargo run --release --bin ceiling -- serve --store redis`.

use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use stateful_compare::{AddItem, Cart, StoreKind, add_to_cart, cart_response, failure};

/// Where the carts are.
#[derive(Clone)]
enum Carts {
    Memory(Arc<RwLock<Vec<Arc<Mutex<Cart>>>>>),
    Redis(ConnectionManager),
}

fn redis_key(n: usize) -> String {
    format!("ceiling:cart:{n}")
}

/// The cart number in the request's `cart=<n>` cookie.
fn cart_number(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("cart="))
        .and_then(|n| n.parse().ok())
}

fn unknown() -> Response {
    failure(StatusCode::BAD_REQUEST, "no cart cookie")
}

async fn read(carts: &Carts, n: usize) -> Result<Option<Cart>, Response> {
    match carts {
        Carts::Memory(all) => {
            let cart = all.read().expect("carts lock").get(n).cloned();
            Ok(cart.map(|c| c.lock().expect("cart lock").clone()))
        }
        Carts::Redis(conn) => {
            let raw: Option<Vec<u8>> = conn
                .clone()
                .get(redis_key(n))
                .await
                .map_err(|e| failure(StatusCode::SERVICE_UNAVAILABLE, e))?;
            Ok(raw.and_then(|r| serde_json::from_slice(&r).ok()))
        }
    }
}

async fn get_cart(State(carts): State<Carts>, headers: HeaderMap) -> Response {
    let Some(n) = cart_number(&headers) else {
        return unknown();
    };
    if let Carts::Memory(all) = &carts {
        // Answered from where the cart lives, without copying it out: the
        // least a read can do.
        let cart = all.read().expect("carts lock").get(n).cloned();
        return match cart {
            Some(cart) => cart_response(&cart.lock().expect("cart lock")),
            None => cart_response(&[]),
        };
    }
    match read(&carts, n).await {
        Ok(cart) => cart_response(&cart.unwrap_or_default()),
        Err(res) => res,
    }
}

async fn add_item(
    State(carts): State<Carts>,
    headers: HeaderMap,
    Query(item): Query<AddItem>,
) -> Response {
    let Some(n) = cart_number(&headers) else {
        return unknown();
    };
    match &carts {
        Carts::Memory(all) => {
            let Some(cart) = all.read().expect("carts lock").get(n).cloned() else {
                return unknown();
            };
            let mut cart = cart.lock().expect("cart lock");
            *cart = add_to_cart(Some(std::mem::take(&mut *cart)), &item.sku);
            cart_response(&cart)
        }
        Carts::Redis(conn) => {
            let cart = match read(&carts, n).await {
                Ok(cart) => add_to_cart(cart, &item.sku),
                Err(res) => return res,
            };
            let json = stateful_compare::cart_json(&cart);
            match conn.clone().set::<_, _, ()>(redis_key(n), json).await {
                Ok(()) => cart_response(&cart),
                Err(e) => failure(StatusCode::SERVICE_UNAVAILABLE, e),
            }
        }
    }
}

async fn seed(State(carts): State<Carts>) -> Response {
    let cart = stateful_compare::seed_cart();
    let n = match &carts {
        Carts::Memory(all) => {
            let mut all = all.write().expect("carts lock");
            all.push(Arc::new(Mutex::new(cart.clone())));
            all.len() - 1
        }
        Carts::Redis(conn) => {
            let mut conn = conn.clone();
            let stored: redis::RedisResult<usize> = async {
                let n: usize = conn.incr("ceiling:carts", 1).await?;
                conn.set::<_, _, ()>(redis_key(n), stateful_compare::cart_json(&cart))
                    .await?;
                Ok(n)
            }
            .await;
            match stored {
                Ok(n) => n,
                Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, e),
            }
        }
    };
    let mut res = cart_response(&cart);
    let cookie = HeaderValue::from_str(&format!("cart={n}; Path=/")).expect("cookie");
    res.headers_mut().insert(SET_COOKIE, cookie);
    res
}

async fn app(store: StoreKind) -> Router {
    let carts = match store {
        StoreKind::Memory => Carts::Memory(Arc::default()),
        StoreKind::Redis => {
            let url = stateful_compare::redis_url();
            let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
            let conn = ConnectionManager::new(client)
                .await
                .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"));
            Carts::Redis(conn)
        }
        other => {
            eprintln!("the ceiling runs on memory and redis, not {}", other.name());
            std::process::exit(2)
        }
    };
    Router::new()
        .route("/cart", get(get_cart))
        .route("/cart/items", post(add_item))
        .route("/cart/seed", post(seed))
        .with_state(carts)
}

fn main() {
    stateful_compare::main_with("ceiling", app);
}
