//! The admin listener (`ADMIN_ADDR`, off unless set): `/metrics` in the
//! Prometheus text format, `/status`, a JSON view of this instance, and
//! `PUT /products/{sku}/price`, which changes a price and invalidates the
//! cached copies.
//! It is a separate listener so that neither is ever reachable on the
//! public port.

mod prices;
mod prometheus;
mod status;

use axum::Router;
use axum::routing::get;

pub(crate) use prices::routes as price_routes;
pub use prometheus::install_recorder;
pub(crate) use status::{Status, StatusSource, database, instance_id};

/// The admin routes: `/metrics` (empty until [`install_recorder`] ran),
/// `/status`, and `prices` (from [`price_routes`]).
pub(crate) fn routes(status: Status, prices: Router) -> Router {
    Router::new()
        .route("/metrics", get(prometheus::render))
        .route("/status", get(status::page))
        .with_state(status)
        .merge(prices)
}
