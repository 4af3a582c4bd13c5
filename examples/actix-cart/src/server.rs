//! Serving the cart API: the binary's `main`, and [`run`] until a signal.

use actix_web::HttpServer;
use shop::{Config, Repo, StartError};

use crate::app::{Connected, Parts, app, connect};

/// The binary's `main`: logging, the shop's settings from the environment,
/// then [`run`]. Exits with status 2 on a bad setting and 1 when a backend
/// cannot be reached or the server cannot run; the message names the
/// variable.
pub async fn main_from_env() {
    let config = shop::start_up("actix-cart");
    if let Err(e) = run(config).await {
        eprintln!("actix-cart: cannot start: {e}");
        std::process::exit(1);
    }
}

/// Serves the cart API with `config` until SIGINT or SIGTERM (actix-web's
/// own signal handling). Must run on actix-web's runtime
/// (`#[actix_web::main]`).
///
/// Logs `actix-cart listening on http://ADDR` once it accepts connections.
///
/// # Errors
///
/// A backend cannot be reached, the address cannot be bound, or the server
/// fails.
pub async fn run(config: Config) -> Result<(), StartError> {
    match connect(&config).await? {
        Connected::Sqlite(parts) => serve(&config, parts).await,
        Connected::Postgres(parts) => serve(&config, parts).await,
        Connected::MySql(parts) => serve(&config, parts).await,
    }
}

async fn serve<DB: Repo>(config: &Config, parts: Parts<DB>) -> Result<(), StartError> {
    let addr_error =
        |e: std::io::Error| StartError::new("SHOP_ADDR", format!("{}: {e}", config.addr));
    let server = HttpServer::new(move || app(parts.clone()))
        .bind(config.addr)
        .map_err(addr_error)?;
    for addr in server.addrs() {
        tracing::info!(
            store = ?config.session_store,
            cache = ?config.cache,
            "actix-cart listening on http://{addr}"
        );
    }
    server.run().await.map_err(addr_error)
}
