//! Support code of the cross-crate end-to-end and fault tests (in
//! `tests/`, one test binary per file): a client for the shop's JSON API,
//! timed requests for fault tests, browsers adding to their carts under a
//! fault, and serving an app in process. The
//! servers, the shop processes and HAProxy come from `test-support`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

pub mod client;
pub mod faults;
pub mod fleets;
pub mod shoppers;
/// Reading `/metrics` scrapes: the harness's, under the name the tests use.
pub use test_support::metrics;

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
