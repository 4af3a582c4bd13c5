//! Tower middleware: a role per request, and causal tokens between a
//! user's requests.
//!
//! [`RouterLayer`] wraps a service. For each request it
//!
//! 1. picks the role from the method — `GET`, `HEAD` and `OPTIONS` read,
//!    everything else writes;
//! 2. loads the user's [`CausalToken`](crate::CausalToken) through a
//!    [`TokenCarrier`] (by default the `db_causal` cookie);
//! 3. puts a [`DbHandle`] in the request extensions;
//! 4. after the handler, if it took the primary for a write
//!    ([`DbHandle::write_pool`], [`DbHandle::begin`],
//!    [`DbHandle::mark_written`]), records the primary's position in a new
//!    token and hands it to the carrier, so the user's next read sees the
//!    write. A handler that called [`DbHandle::record_write_token`] has
//!    recorded it already.
//!
//! # Example
//!
//! A plain Tower service over SQLite; with axum, take `DbHandle<Sqlite>`
//! as an extractor instead (feature `axum`).
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//!
//! use db_router::{DbHandle, DbRouter, RouterLayer};
//! use http::{Method, Request, Response};
//! use sqlx::Sqlite;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let primary = sqlx::SqlitePool::connect("sqlite::memory:").await?;
//! sqlx::query("CREATE TABLE notes (body TEXT)").execute(&primary).await?;
//! let router = DbRouter::builder(primary).build().await?;
//!
//! async fn handle(req: Request<String>) -> Result<Response<String>, Infallible> {
//!     let db = req.extensions().get::<DbHandle<Sqlite>>().unwrap().clone();
//!     if req.method() == Method::POST {
//!         sqlx::query("INSERT INTO notes VALUES (?)")
//!             .bind(req.into_body())
//!             .execute(db.write_pool())
//!             .await
//!             .unwrap();
//!         return Ok(Response::new(String::new()));
//!     }
//!     let mut conn = db.reader().await.unwrap();
//!     let body: String = sqlx::query_scalar("SELECT group_concat(body) FROM notes")
//!         .fetch_one(&mut *conn)
//!         .await
//!         .unwrap();
//!     Ok(Response::new(body))
//! }
//!
//! // Defaults: cookie carrier, GET/HEAD/OPTIONS read.
//! let app = ServiceBuilder::new()
//!     .layer(RouterLayer::new(router.clone()))
//!     .service_fn(handle);
//!
//! let post = Request::post("/").body("hello".to_string())?;
//! let response = app.clone().oneshot(post).await?;
//! let cookie = response.headers()["set-cookie"].to_str()?.to_owned();
//! assert!(cookie.starts_with("db_causal=v1."));
//! assert!(cookie.contains("HttpOnly"));
//!
//! let get = Request::get("/")
//!     .header("cookie", cookie.split(';').next().unwrap())
//!     .body(String::new())?;
//! let response = app.oneshot(get).await?;
//! assert_eq!(response.body(), "hello");
//!
//! // Customised: a header carrier, and PROPFIND counted as a read.
//! let _layer = RouterLayer::new(router)
//!     .with_carrier(db_router::HeaderCarrier::new())
//!     .with_read_methods([Method::GET, Method::HEAD, Method::from_bytes(b"PROPFIND")?]);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::backend::RoutedDatabase;
use crate::router::{DbRouter, Role};

mod carrier;
#[cfg(feature = "axum")]
mod extract;
pub mod future;
mod handle;
#[cfg(feature = "session")]
#[cfg_attr(docsrs, doc(cfg(feature = "session")))]
pub mod session_carrier;

pub use carrier::{CookieCarrier, HeaderCarrier, TokenCarrier};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::MissingRouterLayer;
pub use handle::DbHandle;
#[cfg(feature = "session")]
#[cfg_attr(docsrs, doc(cfg(feature = "session")))]
pub use session_carrier::SessionCarrier;

use self::future::ResponseFuture;

fn default_read_methods() -> Arc<[Method]> {
    Arc::from([Method::GET, Method::HEAD, Method::OPTIONS])
}

/// Layer that applies [`RouterService`]. See the [module docs](self).
pub struct RouterLayer<DB: RoutedDatabase, C = CookieCarrier> {
    router: DbRouter<DB>,
    carrier: C,
    read_methods: Arc<[Method]>,
}

impl<DB: RoutedDatabase> RouterLayer<DB> {
    /// A layer with the default cookie carrier, reading on `GET`, `HEAD`
    /// and `OPTIONS`.
    pub fn new(router: DbRouter<DB>) -> Self {
        Self {
            router,
            carrier: CookieCarrier::new(),
            read_methods: default_read_methods(),
        }
    }
}

impl<DB: RoutedDatabase, C> RouterLayer<DB, C> {
    /// Carries tokens with another [`TokenCarrier`].
    pub fn with_carrier<C2: TokenCarrier>(self, carrier: C2) -> RouterLayer<DB, C2> {
        RouterLayer {
            router: self.router,
            carrier,
            read_methods: self.read_methods,
        }
    }

    /// The methods whose requests read (use replicas); all others write.
    pub fn with_read_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.read_methods = methods.into_iter().collect();
        self
    }
}

impl<DB: RoutedDatabase, C: Clone> Clone for RouterLayer<DB, C> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
            carrier: self.carrier.clone(),
            read_methods: Arc::clone(&self.read_methods),
        }
    }
}

impl<DB: RoutedDatabase, C: fmt::Debug> fmt::Debug for RouterLayer<DB, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterLayer")
            .field("router", &self.router)
            .field("carrier", &self.carrier)
            .field("read_methods", &self.read_methods)
            .finish()
    }
}

impl<S, DB: RoutedDatabase, C: Clone> Layer<S> for RouterLayer<DB, C> {
    type Service = RouterService<S, DB, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RouterService {
            inner,
            router: self.router.clone(),
            carrier: self.carrier.clone(),
            read_methods: Arc::clone(&self.read_methods),
        }
    }
}

/// Middleware that gives each request a [`DbHandle`] and carries causal
/// tokens. See the [module docs](self).
pub struct RouterService<S, DB: RoutedDatabase, C = CookieCarrier> {
    inner: S,
    router: DbRouter<DB>,
    carrier: C,
    read_methods: Arc<[Method]>,
}

impl<DB: RoutedDatabase> RouterService<(), DB> {
    /// A [`RouterLayer`] with the defaults; same as [`RouterLayer::new`].
    pub fn layer(router: DbRouter<DB>) -> RouterLayer<DB> {
        RouterLayer::new(router)
    }
}

impl<S, DB: RoutedDatabase, C> RouterService<S, DB, C> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, DB: RoutedDatabase, C: Clone> Clone for RouterService<S, DB, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            router: self.router.clone(),
            carrier: self.carrier.clone(),
            read_methods: Arc::clone(&self.read_methods),
        }
    }
}

impl<S: fmt::Debug, DB: RoutedDatabase, C: fmt::Debug> fmt::Debug for RouterService<S, DB, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterService")
            .field("inner", &self.inner)
            .field("router", &self.router)
            .field("carrier", &self.carrier)
            .field("read_methods", &self.read_methods)
            .finish()
    }
}

impl<S, DB, C, ReqBody, ResBody> Service<Request<ReqBody>> for RouterService<S, DB, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    DB: RoutedDatabase,
    C: TokenCarrier,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready; the instance that was polled ready serves
        // this request.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        let router = self.router.clone();
        let carrier = self.carrier.clone();
        let role = if self.read_methods.contains(request.method()) {
            Role::Read
        } else {
            Role::Write
        };

        let span = tracing::debug_span!("db_router.request", role = ?role);
        ResponseFuture::new(serve(inner, router, carrier, role, request).instrument(span))
    }
}

/// One request through [`RouterService`]: load the user's token, hand the
/// handler a [`DbHandle`], and store a new token after a write.
async fn serve<S, DB, C, ReqBody, ResBody>(
    mut inner: S,
    router: DbRouter<DB>,
    carrier: C,
    role: Role,
    request: Request<ReqBody>,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    DB: RoutedDatabase,
    C: TokenCarrier,
{
    let (mut parts, body) = request.into_parts();
    let cx = carrier.context(&parts);
    let (token, unavailable) = match carrier.load(&cx, &parts).await {
        Ok(token) => (token, false),
        Err(error) => {
            tracing::warn!(
                %error,
                "causal token carrier failed to load; reads use the primary"
            );
            (None, true)
        }
    };
    let handle = DbHandle::build(router, role, token, unavailable);
    parts.extensions.insert(handle.clone());

    let response = inner.call(Request::from_parts(parts, body)).await?;

    let Some(token) = handle.finish().await else {
        return Ok(response);
    };
    let (mut parts, body) = response.into_parts();
    if let Err(error) = carrier.store(cx, &token, &mut parts).await {
        tracing::error!(%error, "causal token carrier failed to store the token");
    }
    Ok(Response::from_parts(parts, body))
}
