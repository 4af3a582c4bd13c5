//! Server-rendered pages. Every form posts the session's CSRF token; the
//! pages use no script and one stylesheet, which the
//! Content-Security-Policy allows and nothing else.

mod account;
mod cart;
mod catalog;
mod error;
mod layout;
mod orders;
mod profile;
mod sessions;

use axum::Router;
use axum::routing::{get, post};

use crate::db::Repo;
use crate::state::AppState;

pub(super) use error::not_found;
pub use error::not_found_page;

/// The pages' routes.
pub(super) fn routes<DB: Repo>() -> Router<AppState<DB>> {
    Router::new()
        .route("/", get(catalog::index::<DB>))
        .route("/products/{sku}", get(catalog::product::<DB>))
        .route("/cart", get(cart::cart::<DB>))
        .route("/cart/add", post(cart::add::<DB>))
        .route("/cart/remove", post(cart::remove))
        .route(
            "/signup",
            get(account::signup_form).post(account::signup::<DB>),
        )
        .route(
            "/login",
            get(account::login_form).post(account::login::<DB>),
        )
        .route("/logout", post(account::logout))
        .route(
            "/password",
            get(account::password_form::<DB>).post(account::change_password::<DB>),
        )
        .route("/sessions", get(sessions::sessions::<DB>))
        .route("/sessions/revoke", post(sessions::revoke::<DB>))
        .route(
            "/sessions/revoke-others",
            post(sessions::revoke_others::<DB>),
        )
        .route(
            "/profile",
            get(profile::profile::<DB>).post(profile::save_profile::<DB>),
        )
        .route("/checkout", post(orders::checkout::<DB>))
        .route("/orders/{id}", get(orders::order::<DB>))
        .route("/static/shop.css", get(layout::stylesheet))
}
