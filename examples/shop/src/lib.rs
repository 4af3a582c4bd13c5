//! The shop, the example that composes every crate of the family: products
//! from a database behind read replicas and a cache, a cart in the session
//! (so it survives requests that land on different instances), accounts,
//! profiles and orders; HTML pages and a JSON API.
//!
//! Run it with `cargo run -p shop`. [`app`] connects what the [`Config`]
//! names and builds the axum `Router`; the `shop` binary serves it with the
//! settings of [`Config::from_env`] through [`main_from_env`]. How the
//! crates fit together:
//!
//! | concern | crate | here |
//! |---------|-------|------|
//! | cart, log-in, CSRF token, a user's devices | `session-core` + `session-stores` | `SESSION_STORE`: memory, cookie, Redis, DynamoDB, Memcached |
//! | products, users, orders | `db-router` over sqlx | `DATABASE_URL` (SQLite, PostgreSQL, MariaDB) + `DATABASE_REPLICA_URLS` |
//! | read-your-writes | `db-router`'s `SessionCarrier` | the causal token of a write travels in the session |
//! | product reads | `cache-aside` | `CACHE`: none, local (moka), redis |
//!
//! Where things are:
//!
//! | file | its job |
//! |------|---------|
//! | `app.rs` | the router for a [`Config`], with its layers |
//! | `server.rs` | serving it until a signal: [`run`], [`main_from_env`] |
//! | `config.rs` | the settings, from the environment |
//! | `sessions.rs` | the session layer of the configured store |
//! | `db/` | the queries for each database, migrations, connecting |
//! | `catalog.rs`, `caches.rs` | the products, and the caches in front of them |
//! | `cart.rs` | the cart kept in the session |
//! | `state.rs` | what the handlers share |
//! | `actions.rs` | what the pages and the API both do |
//! | `user_sessions.rs` | the user's signed-in devices: listing, signing out |
//! | `routes/` | the pages and the JSON API |
//! | `security/` | passwords, CSRF, log-in limits, headers, body limit |
//! | `admin/` | the admin listener: `/metrics` (Prometheus), `/status`, price changes |
//! | `request_metrics.rs` | HTTP request metrics by route and status |
//! | `error.rs` | the errors of start-up and of requests |
//! | `footer.rs` | the footer: instance, session store, source of the data |
#![forbid(unsafe_code)]

mod actions;
mod admin;
mod app;
mod caches;
mod cart;
mod catalog;
mod config;
mod db;
mod error;
mod footer;
mod request_metrics;
mod routes;
mod security;
mod server;
mod sessions;
mod state;
mod user_sessions;

pub use actions::{add_to_cart, load_cart, product, remove_from_cart};
pub use admin::install_recorder;
pub use app::{Apps, app, apps};
pub use caches::{Listing, ListingCache, ListingLoader, ProductCache, ProductLoader, Tiers, tiers};
pub use cart::{CART_KEY, Cart, CartLine, MAX_QTY};
pub use catalog::{MAX_SKU_LEN, PAGE_SIZE, Product, seed_products};
pub use config::{CacheKind, Config, ConfigError, StoreKind};
pub use db::{Backend, Order, OrderLine, OrderSummary, Profile, Repo, Routers, UserRow, connect};
pub use error::{AppError, StartError};
pub use footer::Footer;
pub use routes::{AddItem, not_found_page};
pub use security::{
    CONTENT_SECURITY_POLICY, LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW,
    MAX_BODY, Oversized, TOO_LARGE, oversized,
};
pub use server::{main_from_env, run, start_up};
pub use sessions::{dynamodb_store, session_layer};
pub use state::{AppState, Shop};
