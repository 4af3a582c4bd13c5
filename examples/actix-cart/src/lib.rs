//! The shop's JSON cart API on actix-web: a thin actix-web front over the
//! shop's own logic.
//!
//! Run it with `cargo run -p actix-cart`. It reads the shop's settings
//! ([`shop::Config::from_env`]: `SHOP_ADDR`, `SESSION_STORE`, `REDIS_URL`,
//! `REDIS_CLUSTER_URLS`, `DYNAMODB_*`, `COOKIE_KEYS`, `DATABASE_URL`,
//! `DATABASE_REPLICA_URLS`, `CACHE`, …), connects the same stores through
//! the shop's code, and answers the shop's cart API byte for byte:
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /api/cart` | `{"items": [{"sku", "qty"}], "count": N}` |
//! | `POST /api/cart/items` `{"sku", "qty"}` | the updated cart |
//! | `DELETE /api/cart/items/{sku}` | the updated cart |
//! | `GET /api/products/{sku}` | the product, read through the cache and the database router |
//! | `GET /healthz` | `ok` |
//!
//! Errors are the shop's `{"error": "…"}` with the shop's statuses; any
//! other path gets the shop's "not found" page, another method of a known
//! path `405` with the shop's `Allow`, and a body over
//! [`shop::MAX_BODY`] the shop's `413` ([`refuse_oversized`]), drained
//! first as the shop drains it. Behind
//! one load balancer with axum shops on the same store, a user's requests
//! may land on either: the session cookie (`shop_session`), the cart's
//! encoding and the validation are the shop's own.
//!
//! How the family's crates are used from actix-web:
//!
//! | concern | how |
//! |---------|-----|
//! | sessions | the shop's [`SessionLayer`](session_core::SessionLayer), passed to `App::wrap` (feature `actix` of `session-core`), and `Session` as an extractor |
//! | read-your-writes | [`db_router::SessionCarrier::start`] and [`finish`](db_router::SessionCarrier::finish) around each request ([`carry_tokens`]) |
//! | product reads | the shop's cache-aside caches, which read through the database router; nothing framework-specific |
#![forbid(unsafe_code)]

mod app;
mod body_limit;
mod causal;
mod error;
mod footer;
mod json;
mod routes;
mod server;

pub use app::{Connected, Parts, app, connect};
pub use body_limit::refuse_oversized;
pub use causal::carry_tokens;
pub use error::ApiError;
pub use json::ApiJson;
pub use server::{main_from_env, run};
