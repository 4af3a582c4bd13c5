//! Wiring: the shop's stores and database, connected once, and the
//! actix-web `App` over them.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, web};
use db_router::DbRouter;
use session_core::SessionLayer;
use shop::{AppState, Config, Footer, Repo, Routers, Shop, StartError};
use sqlx::{MySql, Postgres, Sqlite};

use crate::body_limit::refuse_oversized;
use crate::causal::carry_tokens;
use crate::footer::with_footer;
use crate::routes;

/// What the app of one database `DB` serves from: the session layer of the
/// configured store, the database router and the shop's state (its
/// caches). Cheap to clone; every actix-web worker gets a clone.
#[derive(Debug)]
#[non_exhaustive]
pub struct Parts<DB: Repo> {
    /// The shop's session layer (cookie `shop_session`).
    pub sessions: SessionLayer,
    /// The database router.
    pub router: DbRouter<DB>,
    /// The shop's caches in front of the products.
    pub shop: AppState<DB>,
    /// The footer of the pages, unless `SHOP_FOOTER=off`.
    pub footer: Option<Arc<Footer>>,
}

impl<DB: Repo> Clone for Parts<DB> {
    fn clone(&self) -> Self {
        Parts {
            sessions: self.sessions.clone(),
            router: self.router.clone(),
            shop: self.shop.clone(),
            footer: self.footer.clone(),
        }
    }
}

/// [`Parts`] for the database the settings name.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Connected {
    /// SQLite.
    Sqlite(Parts<Sqlite>),
    /// PostgreSQL.
    Postgres(Parts<Postgres>),
    /// MySQL or MariaDB.
    MySql(Parts<MySql>),
}

/// Connects what `config` names, through the shop's own code: the session
/// store, the cache tiers and the database (migrated and seeded when new).
///
/// # Errors
///
/// A backend that cannot be reached, naming its variable.
pub async fn connect(config: &Config) -> Result<Connected, StartError> {
    let sessions = shop::session_layer(config).await?;
    let tiers = shop::tiers(config).await?;
    let database = shop::connect(
        config.database_url.as_deref(),
        &config.replica_urls,
        &config.data_dir,
    )
    .await?;
    let footer = Footer::of(config);
    fn parts<DB: Repo>(
        sessions: SessionLayer,
        router: DbRouter<DB>,
        tiers: &shop::Tiers,
        footer: Option<Arc<Footer>>,
    ) -> Parts<DB> {
        Parts {
            shop: Shop::new(&router, tiers, &sessions),
            sessions,
            router,
            footer,
        }
    }
    Ok(match database {
        Routers::Sqlite(router) => Connected::Sqlite(parts(sessions, router, &tiers, footer)),
        Routers::Postgres(router) => Connected::Postgres(parts(sessions, router, &tiers, footer)),
        Routers::MySql(router) => Connected::MySql(parts(sessions, router, &tiers, footer)),
    })
}

/// The cart API over `parts`: the routes (any other path gets the shop's
/// "not found" page), inside the footer and causal-token
/// middleware, inside the session middleware, inside the shop's `413` to a
/// body declared too large, inside the shop's security headers.
pub fn app<DB: Repo>(
    parts: Parts<DB>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::from(parts.shop))
        .app_data(web::Data::new(parts.router))
        // As on the shop's router, a `GET` route answers `HEAD` too, and
        // another method of a known path gets `405` with `Allow`.
        .service(
            web::resource("/api/cart")
                .route(web::get().to(routes::cart))
                .route(web::head().to(routes::cart))
                .default_service(routes::not_allowed(READS)),
        )
        .service(
            web::resource("/api/cart/items")
                .route(web::post().to(routes::add::<DB>))
                .default_service(routes::not_allowed("POST")),
        )
        .service(
            web::resource("/api/cart/items/{sku}")
                .route(web::delete().to(routes::remove))
                .default_service(routes::not_allowed("DELETE")),
        )
        .service(
            web::resource("/api/products/{sku}")
                .route(web::get().to(routes::product::<DB>))
                .route(web::head().to(routes::product::<DB>))
                .default_service(routes::not_allowed(READS)),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(routes::healthz))
                .route(web::head().to(routes::healthz))
                .default_service(routes::not_allowed(READS)),
        )
        .default_service(web::to(routes::not_found))
        // `wrap` puts each middleware outside the ones before it: the
        // session middleware must run outside the token carrier, so that
        // it saves the session after the token was stored.
        .wrap(from_fn(move |req, next| {
            with_footer(parts.footer.clone(), req, next)
        }))
        .wrap(from_fn(carry_tokens::<DB>))
        .wrap(parts.sessions)
        .wrap(from_fn(refuse_oversized))
        .wrap(security_headers())
}

/// The `Allow` of a path served by `GET` (and so `HEAD`), written as the
/// shop's router writes it.
const READS: &str = "GET,HEAD";

/// The shop's security headers, on every response that lacks them.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("x-content-type-options", "nosniff"))
        .add(("x-frame-options", "DENY"))
        .add(("referrer-policy", "same-origin"))
        .add(("content-security-policy", shop::CONTENT_SECURITY_POLICY))
}
