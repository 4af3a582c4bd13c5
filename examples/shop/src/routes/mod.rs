//! The shop's URLs: the HTML pages, the JSON API under `/api`, and
//! `/healthz`. Both kinds of handler are thin: they read the request and
//! shape the answer; what they do is in [`actions`](crate::actions).

mod api;
mod pages;

pub use api::AddItem;
pub use pages::not_found_page;

use axum::Router;
use axum::routing::get;

use crate::db::Repo;
use crate::state::AppState;

/// Every route of the shop; anything else is the pages' "not found".
pub(crate) fn all<DB: Repo>() -> Router<AppState<DB>> {
    Router::new()
        .merge(pages::routes::<DB>())
        .merge(api::routes::<DB>())
        .route("/healthz", get(|| async { "ok" }))
        .fallback(pages::not_found)
}
