//! What every page shares: the document, the header with the cart and the
//! user, prices, the CSRF field, the stylesheet.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use session_core::Session;

use crate::actions::{self, SessionUser};
use crate::error::AppError;
use crate::security;

/// What the header of every page needs.
pub(super) struct Chrome {
    cart_count: u32,
    pub(super) user: Option<SessionUser>,
    csrf: String,
}

/// The header of `session`'s pages (creating its CSRF token on first use).
pub(super) async fn chrome(session: &Session) -> Result<Chrome, AppError> {
    Ok(Chrome {
        cart_count: actions::load_cart(session).await?.count(),
        user: actions::current_user(session).await?,
        csrf: security::csrf_token(session).await?,
    })
}

/// Cents as euros: `1250` is `12.50 €`.
pub(super) fn price(cents: i64) -> String {
    format!("{}.{:02} €", cents / 100, cents % 100)
}

/// The hidden field with the session's CSRF token, in every form.
pub(super) fn csrf_field(chrome: &Chrome) -> Markup {
    html! { input type="hidden" name="csrf" value=(chrome.csrf); }
}

/// A whole HTML document: `header`, then `title` and `body`.
fn document(title: &str, header: Markup, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · stateful shop" }
                link rel="stylesheet" href="/static/shop.css";
            }
            body {
                header { (header) }
                main { h1 { (title) } (body) }
                (crate::footer::render())
            }
        }
    };
    Html(markup.into_string())
}

/// A page whose header has only the shop's name (for errors).
pub(super) fn bare_page(title: &str, body: Markup) -> Html<String> {
    document(
        title,
        html! { a href="/" class="brand" { "stateful shop" } },
        body,
    )
}

/// A page whose header shows the cart, the user and the log-in links.
pub(super) fn page(title: &str, chrome: &Chrome, body: Markup) -> Html<String> {
    let header = html! {
        a href="/" class="brand" { "stateful shop" }
        nav {
            a href="/cart" id="cart-link" { "Cart (" (chrome.cart_count) ")" }
            @if let Some(user) = &chrome.user {
                a href="/profile" id="profile-link" { (user.email) }
                form method="post" action="/logout" {
                    (csrf_field(chrome))
                    button type="submit" id="logout" { "Log out" }
                }
            } @else {
                a href="/login" id="login-link" { "Log in" }
                a href="/signup" id="signup-link" { "Sign up" }
            }
        }
    };
    document(title, header, body)
}

const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;max-width:56rem;margin:0 auto;padding:1rem;color:#222}\
header{display:flex;justify-content:space-between;align-items:center;border-bottom:1px solid #ccc;padding-bottom:.5rem}\
header nav{display:flex;gap:1rem;align-items:center}.brand{font-weight:bold}\
table{border-collapse:collapse;width:100%}td,th{padding:.3rem;border-bottom:1px solid #eee;text-align:left}\
form{display:inline}form.stacked{display:flex;flex-direction:column;gap:.5rem;max-width:24rem}\
footer#served{margin-top:2rem;border-top:1px solid #eee;padding-top:.3rem;font-size:.75rem;color:#777}\
.error{color:#a00}.notice{color:#060}.pages{display:flex;gap:.5rem;margin-top:1rem}";

/// `GET /static/shop.css`.
pub(super) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// The message of a form's last error, if any.
pub(super) fn error_line(error: Option<&AppError>) -> Markup {
    html! { @if let Some(e) = error { p class="error" id="error" { (e.public_message()) } } }
}

/// The page `title` saying that what it offers is not available (`error`
/// says why), with the error's status.
pub(super) fn unavailable(title: &str, chrome: &Chrome, error: &AppError) -> Response {
    let body =
        html! { p id="unavailable" class="error" { "Not available: " (error.public_message()) } };
    (error.status(), page(title, chrome, body)).into_response()
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    pub(super) csrf: String,
}
