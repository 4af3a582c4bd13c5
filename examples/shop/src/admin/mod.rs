//! The admin listener (`ADMIN_ADDR`, off unless set): `/metrics` in the
//! Prometheus text format and `/status`, a JSON view of this instance.
//! It is a separate listener so that neither is ever reachable on the
//! public port.

mod prometheus;
mod status;

use axum::Router;
use axum::routing::get;

pub use prometheus::install_recorder;
pub(crate) use status::{Status, StatusSource, database, instance_id};

/// The admin routes: `/metrics` (empty until [`install_recorder`] ran) and
/// `/status`.
pub(crate) fn routes(status: Status) -> Router {
    Router::new()
        .route("/metrics", get(prometheus::render))
        .route("/status", get(status::page))
        .with_state(status)
}
