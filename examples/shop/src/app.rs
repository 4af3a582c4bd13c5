//! Wiring: the shop's router for a [`Config`], with its layers.

use axum::Router;
use db_router::{DbRouter, RouterLayer, SessionCarrier};
use tower_http::limit::RequestBodyLimitLayer;

use crate::admin::{self, Status, StatusSource};
use crate::caches::{self, Tiers};
use crate::config::Config;
use crate::db::{self, Repo, Routers};
use crate::error::StartError;
use crate::footer::{self, Footer};
use crate::request_metrics;
use crate::routes;
use crate::security::{self, MAX_BODY};
use crate::sessions::session_layer;
use crate::state::Shop;

/// The shop's router for `config`: connects the session store, the
/// database (running the migrations, which create and seed a new
/// database) and the cache.
///
/// # Errors
///
/// A backend that cannot be reached, naming its variable.
pub async fn app(config: &Config) -> Result<Router, StartError> {
    Ok(apps(config).await?.public)
}

/// The shop's two routers: the public one of [`app`], and the admin one
/// (`/metrics`, `/status`, `PUT /products/{sku}/price`) that `run` serves
/// on `ADMIN_ADDR`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Apps {
    /// The shop, for the public port.
    pub public: Router,
    /// `/metrics` (after [`install_recorder`](crate::install_recorder)),
    /// `/status` and `PUT /products/{sku}/price`: never for the public
    /// port.
    pub admin: Router,
}

/// The public and admin routers for `config`, connected as for [`app`].
///
/// # Errors
///
/// A backend that cannot be reached, naming its variable.
pub async fn apps(config: &Config) -> Result<Apps, StartError> {
    let sessions = session_layer(config).await?;
    let tiers = caches::tiers(config).await?;
    let database = db::connect(
        config.database_url.as_deref(),
        &config.replica_urls,
        &config.data_dir,
    );
    let (routes, database, prices) = match database.await? {
        Routers::Sqlite(router) => with_database(router, &tiers),
        Routers::Postgres(router) => with_database(router, &tiers),
        Routers::MySql(router) => with_database(router, &tiers),
    };
    let routes = match Footer::of(config) {
        Some(footer) => routes.layer(axum::middleware::from_fn(move |request, next| {
            footer::track(footer.clone(), request, next)
        })),
        None => routes,
    };
    let [nosniff, frames, referrer, csp] = security::header_layers();
    let admin = admin::routes(Status::new(admin::instance_id(), config, database), prices);
    let public = routes
        // Outside the router layer: it adds the session the token
        // carrier uses, and saves it after the token was stored.
        .layer(sessions)
        // Inside the header layers, so that a 413 carries them too.
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::from_fn(security::refuse_oversized))
        .layer(nosniff)
        .layer(frames)
        .layer(referrer)
        .layer(csp)
        // Outermost: counts every answer, the outer layers' included.
        .layer(axum::middleware::from_fn(request_metrics::count));
    Ok(Apps { public, admin })
}

/// The routes over `router`'s database, each request given its handle
/// (the causal token of its writes kept in the session), what `/status`
/// reports about the database and the caches, and the admin route that
/// changes prices.
fn with_database<DB: Repo>(router: DbRouter<DB>, tiers: &Tiers) -> (Router, StatusSource, Router) {
    let shop = Shop::new(&router, tiers);
    let (products, listing) = (shop.clone(), shop.clone());
    let status = admin::database(
        &router,
        vec![
            ("products", Box::new(move || products.products.stats())),
            ("listing", Box::new(move || listing.listing.stats())),
        ],
    );
    let prices = admin::price_routes(router.clone(), shop.clone());
    let routes = routes::all::<DB>()
        .route_layer(axum::middleware::from_fn(request_metrics::mark_route))
        .with_state(shop)
        .layer(RouterLayer::new(router).with_carrier(SessionCarrier::new()));
    (routes, status, prices)
}
