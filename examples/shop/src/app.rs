//! Wiring: the shop's router for a [`Config`], with its layers.

use axum::Router;
use db_router::{DbRouter, RouterLayer, SessionCarrier};
use tower_http::limit::RequestBodyLimitLayer;

use crate::caches::{self, Tiers};
use crate::config::Config;
use crate::db::{self, Repo, Routers};
use crate::error::StartError;
use crate::footer::{self, Footer};
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
    let sessions = session_layer(config).await?;
    let tiers = caches::tiers(config).await?;
    let database = db::connect(
        config.database_url.as_deref(),
        &config.replica_urls,
        &config.data_dir,
    );
    let routes = match database.await? {
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

/// The routes over `router`'s database, each request given its handle
/// (the causal token of its writes kept in the session).
fn with_database<DB: Repo>(router: DbRouter<DB>, tiers: &Tiers) -> Router {
    routes::all::<DB>()
        .with_state(Shop::new(&router, tiers))
        .layer(RouterLayer::new(router).with_carrier(SessionCarrier::new()))
}
