//! Support code for the cross-crate tests: serving an app on a loopback
//! port and finding the test servers started by `scripts/services.sh`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

pub mod client;
pub mod e2e;
pub mod faults;
pub mod metrics;
pub mod servers;

/// Serves `app` on a free loopback port in the background and returns its
/// address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("test server");
    });
    addr
}

/// The value of the environment variable `var`, or `default`.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}
