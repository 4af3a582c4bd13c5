//! The shop: products from a database behind read replicas and a cache, a
//! cart in the session, accounts, profiles, orders; HTML pages and a JSON
//! API.
//!
//! [`app`] connects what the [`Config`] names and builds the axum
//! `Router`; the `shop` binary serves it with the settings of
//! [`Config::from_env`]. How the crates fit together:
//!
//! | concern | crate | here |
//! |---------|-------|------|
//! | cart, log-in, CSRF token | `session-core` + `session-stores` | `SESSION_STORE`: memory, cookie, Redis, DynamoDB |
//! | products, users, orders | `db-router` over sqlx | `DATABASE_URL` (SQLite, PostgreSQL, MariaDB) + `DATABASE_REPLICA_URLS` |
//! | read-your-writes | `db-router`'s `SessionCarrier` | the causal token of a write travels in the session |
//! | product reads | `cache-aside` | `CACHE`: none, local (moka), redis |

mod actions;
mod api;
mod cart;
mod catalog;
mod config;
mod db;
mod pages;
mod security;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use db_router::{DbRouter, RouterLayer, SessionCarrier};
use session_core::SessionLayer;
use session_stores::cookie::{CookieStore, Key};
use session_stores::{DynamoDbStore, MemoryStore, RedisStore};
use tower_http::limit::RequestBodyLimitLayer;

pub use cart::{CART_KEY, Cart, CartLine, MAX_QTY};
pub use catalog::{
    Listing, ListingCache, ListingLoader, MAX_SKU_LEN, PAGE_SIZE, Product, ProductCache,
    ProductLoader, seed_products,
};
pub use config::{CacheKind, Config, ConfigError, StartError, StoreKind};
pub use db::{Backend, Order, OrderLine, OrderSummary, Profile, Repo, UserRow};
pub use security::{
    CONTENT_SECURITY_POLICY, LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW,
};

use catalog::Tiers;
use db::Routers;
use security::LoginLimiter;

/// Largest request body the shop accepts.
pub const MAX_BODY: usize = 16 * 1024;

/// Shared state of the handlers for the database `DB`.
#[derive(Debug)]
pub struct Shop<DB: Repo> {
    products: ProductCache<DB>,
    listing: ListingCache<DB>,
    limiter: LoginLimiter,
}

/// The handlers' state: the shop behind an `Arc`.
type AppState<DB> = Arc<Shop<DB>>;

/// The session layer for `config`, connecting to the store it names.
///
/// # Errors
///
/// The store cannot be reached (Redis, DynamoDB); the error names the
/// variable that points to it.
pub async fn session_layer(config: &Config) -> Result<SessionLayer, StartError> {
    let layer = match config.session_store {
        StoreKind::Memory => SessionLayer::new(MemoryStore::default()),
        StoreKind::Cookie => {
            let store = match &config.cookie_keys {
                Some(keys) => CookieStore::from_base64_keys(keys)
                    .map_err(|e| StartError::new("COOKIE_KEYS", e.to_string()))?,
                None => {
                    tracing::warn!(
                        "COOKIE_KEYS not set: sealing cookies with a random key of this process only"
                    );
                    CookieStore::new(Key::generate())
                }
            };
            SessionLayer::client_side(store)
        }
        StoreKind::Redis => {
            let builder = RedisStore::builder()
                .with_key_prefix("shop:session:")
                .with_near_cache(config.redis_near_cache);
            let store = if config.redis_cluster_urls.is_empty() {
                let url = config.redis_url.as_deref().unwrap_or_default();
                builder
                    .connect(url)
                    .await
                    .map_err(|e| StartError::new("REDIS_URL", e.to_string()))?
            } else {
                builder
                    .connect_cluster(&config.redis_cluster_urls)
                    .await
                    .map_err(|e| StartError::new("REDIS_CLUSTER_URLS", e.to_string()))?
            };
            SessionLayer::new(store)
        }
        StoreKind::DynamoDb => SessionLayer::new(dynamodb_store(config).await?),
    };
    Ok(layer
        .with_cookie_name("shop_session")
        .with_secure(config.secure_cookie)
        .with_max_attempts(config.session_max_attempts)
        .with_store_timeout(config.session_store_timeout))
}

async fn dynamodb_store(config: &Config) -> Result<DynamoDbStore, StartError> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let var = if config.dynamodb_endpoint.is_some() {
        "DYNAMODB_ENDPOINT"
    } else {
        "DYNAMODB_TABLE"
    };
    // Idle connections are dropped before servers that close them after a
    // few seconds (such as the emulator) do.
    let http = aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(Duration::from_secs(2))
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(endpoint) = &config.dynamodb_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk))
        .with_table_name(&config.dynamodb_table);
    match tokio::time::timeout(Duration::from_secs(15), store.create_table_if_missing()).await {
        Ok(Ok(())) => Ok(store),
        Ok(Err(e)) => Err(StartError::new(var, e.to_string())),
        Err(_) => Err(StartError::new(var, "no answer within 15 s".to_owned())),
    }
}

async fn cache_tiers(config: &Config) -> Result<Tiers, StartError> {
    Ok(match config.cache {
        CacheKind::None => Tiers::None,
        CacheKind::Local => Tiers::Local,
        CacheKind::Redis => {
            let url = config.redis_url.as_deref().unwrap_or_default();
            let bad = |e: String| StartError::new("REDIS_URL", e);
            let client = redis::Client::open(url).map_err(|e| bad(e.to_string()))?;
            let ping = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(Duration::from_secs(5), ping).await {
                Ok(Ok(_)) => Tiers::Redis(Box::new(client)),
                Ok(Err(e)) => return Err(bad(format!("cannot reach Redis: {e}"))),
                Err(_) => return Err(bad("Redis did not answer within 5 s".to_owned())),
            }
        }
    })
}

/// The shop's router for `config`: connects the session store, the
/// database (running the migrations, which create and seed a new
/// database) and the cache.
///
/// # Errors
///
/// A backend that cannot be reached, naming its variable.
pub async fn app(config: &Config) -> Result<Router, StartError> {
    let sessions = session_layer(config).await?;
    let tiers = cache_tiers(config).await?;
    let routes = match db::connect(config).await? {
        Routers::Sqlite(router) => routes(router, &tiers),
        Routers::Postgres(router) => routes(router, &tiers),
        Routers::MySql(router) => routes(router, &tiers),
    };
    let [nosniff, frames, referrer, csp] = security::header_layers();
    Ok(routes
        // Outside the router layer: it adds the session the token
        // carrier uses, and saves it after the token was stored.
        .layer(sessions)
        // Inside the header layers, so that a 413 carries them too.
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::from_fn(security::refuse_oversized))
        .layer(nosniff)
        .layer(frames)
        .layer(referrer)
        .layer(csp))
}

fn routes<DB: Repo>(router: DbRouter<DB>, tiers: &Tiers) -> Router {
    let (products, listing) = catalog::caches(&router, tiers);
    let shop = Arc::new(Shop {
        products,
        listing,
        limiter: LoginLimiter::default(),
    });
    Router::new()
        .route("/", get(pages::index::<DB>))
        .route("/products/{sku}", get(pages::product::<DB>))
        .route("/cart", get(pages::cart::<DB>))
        .route("/cart/add", post(pages::add::<DB>))
        .route("/cart/remove", post(pages::remove))
        .route("/signup", get(pages::signup_form).post(pages::signup::<DB>))
        .route("/login", get(pages::login_form).post(pages::login::<DB>))
        .route("/logout", post(pages::logout))
        .route(
            "/profile",
            get(pages::profile::<DB>).post(pages::save_profile::<DB>),
        )
        .route("/checkout", post(pages::checkout::<DB>))
        .route("/orders/{id}", get(pages::order::<DB>))
        .route("/static/shop.css", get(pages::stylesheet))
        .route("/api/products", get(api::products::<DB>))
        .route("/api/products/{sku}", get(api::product::<DB>))
        .route("/api/cart", get(api::cart))
        .route("/api/cart/items", post(api::add::<DB>))
        .route("/api/cart/items/{sku}", delete(api::remove))
        .route("/api/signup", post(api::signup::<DB>))
        .route("/api/login", post(api::login::<DB>))
        .route("/api/logout", post(api::logout))
        .route(
            "/api/profile",
            get(api::profile::<DB>).post(api::save_profile::<DB>),
        )
        .route("/api/checkout", post(api::checkout::<DB>))
        .route("/api/orders/{id}", get(api::order::<DB>))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(pages::not_found)
        .with_state(shop)
        .layer(RouterLayer::new(router).with_carrier(SessionCarrier::new()))
}

/// The shop's `main`: logging, settings from the environment, then
/// [`run`]. Exits the process with status 2 on a bad setting and 1 when a
/// backend cannot be reached or the server cannot run; the message names
/// the variable.
pub async fn main_from_env() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    // TLS (`rediss://`) uses rustls, whose crypto provider is the
    // application's to choose; the libraries never install one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("shop: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(config).await {
        eprintln!("shop: cannot start: {e}");
        std::process::exit(1);
    }
}

/// Serves the shop with `config` until SIGINT or SIGTERM.
///
/// Logs `shop listening on http://ADDR` once it accepts connections.
///
/// # Errors
///
/// A backend cannot be reached, the address cannot be bound, or the server
/// fails.
pub async fn run(config: Config) -> Result<(), StartError> {
    let app = app(&config).await?;
    let addr_error =
        |e: std::io::Error| StartError::new("SHOP_ADDR", format!("{}: {e}", config.addr));
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(addr_error)?;
    let addr = listener.local_addr().map_err(addr_error)?;
    tracing::info!(
        store = ?config.session_store,
        cache = ?config.cache,
        "shop listening on http://{addr}"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(addr_error)
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

/// What handlers can fail with. The JSON API answers
/// `{"error": "<message>"}` with the status of [`AppError::status`]; the
/// pages show the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The session could not be read or saved.
    #[error(transparent)]
    Session(#[from] session_core::Error),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] db_router::Error),
    /// The product cache failed.
    #[error("product lookup failed: {0}")]
    Cache(#[from] cache_aside::Error<db_router::Error>),
    /// No product has this SKU.
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    /// A quantity outside `1..=MAX_QTY`.
    #[error("quantity must be between 1 and {MAX_QTY}")]
    BadQuantity,
    /// Nothing here.
    #[error("not found")]
    NotFound,
    /// The request needs a logged-in user.
    #[error("log in first")]
    Unauthorized,
    /// Wrong e-mail or password.
    #[error("wrong e-mail or password")]
    BadCredentials,
    /// Too many failed log-ins; try again after this many seconds.
    #[error("too many failed log-ins, try again in {0} s")]
    RateLimited(u64),
    /// Sign-up with an e-mail that has an account.
    #[error("this e-mail already has an account")]
    EmailTaken,
    /// A form or JSON field that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// A form without the session's CSRF token.
    #[error("the form expired, reload the page and try again")]
    Csrf,
    /// Checkout of an empty cart.
    #[error("the cart is empty")]
    EmptyCart,
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(String),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Database(e.into())
    }
}

fn database_status(e: &db_router::Error) -> StatusCode {
    use db_router::Error as E;
    match e {
        E::Database(inner) => match **inner {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StatusCode::SERVICE_UNAVAILABLE,
            // SQLSTATE class 08 (connection exception) and 57P (the server
            // shutting down or terminating the connection): the database
            // is unavailable, not the request wrong.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        E::NoReplicaAvailable { .. } | E::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Session(e) => e.status(),
            AppError::Database(e) => database_status(e),
            AppError::Cache(e) => match e.loader_error() {
                Some(e) => database_status(e),
                None => StatusCode::SERVICE_UNAVAILABLE,
            },
            AppError::UnknownProduct(_) | AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadQuantity | AppError::Invalid(_) | AppError::EmptyCart => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::EmailTaken => StatusCode::CONFLICT,
            AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the client: server-side details stay in the
    /// log.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Session(e) => e.public_message().to_owned(),
            e if e.status().is_server_error() => {
                "the shop cannot answer right now, try again shortly".to_owned()
            }
            e => e.to_string(),
        }
    }

    fn headers(&self, response: &mut Response) {
        let retry = match self {
            AppError::RateLimited(secs) => Some(*secs),
            e if e.status() == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.public_message() })),
        )
            .into_response();
        self.headers(&mut response);
        response
    }
}
