//! The shop: products, a cart in the session, pages and a JSON API.
//!
//! [`app`] builds the axum `Router`; the `shop` binary serves it with the
//! settings of [`Config::from_env`].

mod cart;
mod catalog;
mod config;
mod pages;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use session_core::{Session, SessionLayer};
use session_stores::MemoryStore;
use session_stores::cookie::{CookieStore, Key};
use tower_http::limit::RequestBodyLimitLayer;

pub use cart::{CART_KEY, Cart, CartLine, MAX_QTY};
pub use catalog::{Product, seed_products};
pub use config::{Config, ConfigError, StoreKind};

/// Largest request body the shop accepts.
pub const MAX_BODY: usize = 16 * 1024;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    products: Arc<Vec<Product>>,
}

impl AppState {
    fn product(&self, sku: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.sku == sku)
    }
}

/// The session layer for `config`.
pub fn session_layer(config: &Config) -> SessionLayer {
    let layer = match config.session_store {
        StoreKind::Memory => SessionLayer::new(MemoryStore::default()),
        StoreKind::Cookie => {
            let store = match &config.cookie_keys {
                // Checked when the configuration was read.
                Some(keys) => CookieStore::from_base64_keys(keys).expect("valid COOKIE_KEYS"),
                None => {
                    tracing::warn!(
                        "COOKIE_KEYS not set: sealing cookies with a random key of this process only"
                    );
                    CookieStore::new(Key::generate())
                }
            };
            SessionLayer::client_side(store)
        }
    };
    layer
        .with_cookie_name("shop_session")
        .with_secure(config.secure_cookie)
}

/// The shop's router for `config`.
pub fn app(config: &Config) -> Router {
    let state = AppState {
        products: Arc::new(seed_products()),
    };
    Router::new()
        .route("/", get(pages::index))
        .route("/cart", get(pages::cart))
        .route("/cart/add", post(add_form))
        .route("/cart/remove", post(remove_form))
        .route("/api/products", get(api_products))
        .route("/api/cart", get(api_cart))
        .route("/api/cart/items", post(api_add))
        .route("/api/cart/items/{sku}", delete(api_remove))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
        .layer(session_layer(config))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
}

/// The shop's `main`: logging, settings from the environment, then
/// [`run`]. Exits the process with status 2 on a bad setting and 1 if the
/// server cannot run.
pub async fn main_from_env() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("shop: {e}");
            std::process::exit(2);
        }
    };
    let addr = config.addr;
    if let Err(e) = run(config).await {
        eprintln!("shop: cannot serve on {addr} (SHOP_ADDR): {e}");
        std::process::exit(1);
    }
}

/// Serves the shop with `config` until SIGINT or SIGTERM.
///
/// Logs `shop listening on http://ADDR` once it accepts connections.
///
/// # Errors
///
/// The address cannot be bound, or the server fails.
pub async fn run(config: Config) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(store = ?config.session_store, "shop listening on http://{addr}");
    axum::serve(listener, app(&config))
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// What handlers can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The session could not be read or saved.
    #[error(transparent)]
    Session(#[from] session_core::Error),
    /// No product has this SKU.
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    /// A quantity outside `1..=MAX_QTY`.
    #[error("quantity must be between 1 and {MAX_QTY}")]
    BadQuantity,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self {
            AppError::Session(e) => return e.into_response(),
            AppError::UnknownProduct(_) => StatusCode::NOT_FOUND,
            AppError::BadQuantity => StatusCode::UNPROCESSABLE_ENTITY,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

async fn load_cart(session: &Session) -> Result<Cart, AppError> {
    Ok(session.get::<Cart>(CART_KEY).await?.unwrap_or_default())
}

async fn add_to_cart(
    state: &AppState,
    session: &Session,
    sku: &str,
    qty: u32,
) -> Result<Cart, AppError> {
    if !(1..=MAX_QTY).contains(&qty) {
        return Err(AppError::BadQuantity);
    }
    if state.product(sku).is_none() {
        return Err(AppError::UnknownProduct(sku.to_owned()));
    }
    Ok(session
        .update(CART_KEY, |cart: Option<Cart>| {
            let mut cart = cart.unwrap_or_default();
            cart.add(sku, qty);
            cart
        })
        .await?)
}

async fn remove_from_cart(session: &Session, sku: &str) -> Result<Cart, AppError> {
    Ok(session
        .update(CART_KEY, |cart: Option<Cart>| {
            let mut cart = cart.unwrap_or_default();
            cart.remove(sku);
            cart
        })
        .await?)
}

/// Body of `POST /api/cart/items` and of the add-to-cart form.
#[derive(Debug, Deserialize)]
struct AddItem {
    sku: String,
    #[serde(default = "one")]
    qty: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
struct RemoveItem {
    sku: String,
}

async fn api_products(State(state): State<AppState>) -> Json<Arc<Vec<Product>>> {
    Json(state.products.clone())
}

async fn api_cart(session: Session) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(cart_json(&load_cart(&session).await?)))
}

async fn api_add(
    State(state): State<AppState>,
    session: Session,
    Json(item): Json<AddItem>,
) -> Result<Json<serde_json::Value>, AppError> {
    let cart = add_to_cart(&state, &session, &item.sku, item.qty).await?;
    Ok(Json(cart_json(&cart)))
}

async fn api_remove(
    session: Session,
    Path(sku): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(cart_json(&remove_from_cart(&session, &sku).await?)))
}

async fn add_form(
    State(state): State<AppState>,
    session: Session,
    Form(item): Form<AddItem>,
) -> Result<Redirect, AppError> {
    add_to_cart(&state, &session, &item.sku, item.qty).await?;
    Ok(Redirect::to("/cart"))
}

async fn remove_form(session: Session, Form(item): Form<RemoveItem>) -> Result<Redirect, AppError> {
    remove_from_cart(&session, &item.sku).await?;
    Ok(Redirect::to("/cart"))
}

fn cart_json(cart: &Cart) -> serde_json::Value {
    serde_json::json!({ "items": cart.items, "count": cart.count() })
}
