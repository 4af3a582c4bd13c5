//! The shop.
//!
//! Run with: `cargo run -p examples --bin shop`, then open
//! <http://127.0.0.1:3000>. Settings come from the environment; see
//! `examples::shop::Config`.

use examples::shop::{Config, app};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
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
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shop: cannot listen on {} (SHOP_ADDR): {e}", config.addr);
            std::process::exit(2);
        }
    };
    tracing::info!(
        addr = %config.addr,
        store = ?config.session_store,
        "shop listening on http://{}",
        config.addr
    );
    axum::serve(listener, app(&config))
        .with_graceful_shutdown(shutdown())
        .await
        .expect("server error");
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
