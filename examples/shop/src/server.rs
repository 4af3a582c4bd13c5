//! Serving the shop: the binary's `main`, and [`run`] until a signal.

use std::net::SocketAddr;

use crate::admin;
use crate::app::apps;
use crate::config::Config;
use crate::error::StartError;

/// The shop's `main`: logging, settings from the environment, then
/// [`run`]. Exits the process with status 2 on a bad setting and 1 when a
/// backend cannot be reached or the server cannot run; the message names
/// the variable.
pub async fn main_from_env() {
    let config = start_up("shop");
    if let Err(e) = run(config).await {
        eprintln!("shop: cannot start: {e}");
        std::process::exit(1);
    }
}

/// What a binary serving the shop (`shop`, or another front end named
/// `program`) does first: logging (`RUST_LOG`, default `info`), rustls's
/// crypto provider, and the settings from the environment. Exits the
/// process with status 2 on a bad setting, naming the variable.
pub fn start_up(program: &str) -> Config {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    // TLS (`rediss://`) uses rustls, whose crypto provider is the
    // application's to choose; the libraries never install one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(2);
        }
    }
}

/// Serves the shop with `config` until SIGINT or SIGTERM, and `/metrics`
/// and `/status` on `ADMIN_ADDR` when it is set (installing the Prometheus
/// recorder first).
///
/// Logs `shop listening on http://ADDR` once it accepts connections (after
/// `admin listening on http://ADDR` when there is an admin listener).
///
/// # Errors
///
/// A backend cannot be reached, the address cannot be bound, or the server
/// fails.
pub async fn run(config: Config) -> Result<(), StartError> {
    if config.admin_addr.is_some() && !admin::install_recorder() {
        tracing::warn!("another metrics recorder is installed: /metrics stays empty");
    }
    let apps = apps(&config).await?;
    if let Some(admin_addr) = config.admin_addr {
        let admin_error =
            |e: std::io::Error| StartError::new("ADMIN_ADDR", format!("{admin_addr}: {e}"));
        let listener = tokio::net::TcpListener::bind(admin_addr)
            .await
            .map_err(admin_error)?;
        let bound = listener.local_addr().map_err(admin_error)?;
        tracing::info!(
            instance = admin::instance_id(),
            "admin listening on http://{bound}"
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, apps.admin).await {
                tracing::error!(error = %e, "the admin listener failed");
            }
        });
    }
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
        apps.public
            .into_make_service_with_connect_info::<SocketAddr>(),
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
