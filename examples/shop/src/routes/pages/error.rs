//! Errors shown as pages: a page with the message, or the log-in form when
//! the request needs a logged-in user.

use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;

use super::layout::bare_page;
use crate::error::AppError;

/// An error shown as a page.
#[derive(Debug)]
pub(crate) struct PageError(AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl From<session_core::Error> for PageError {
    fn from(e: session_core::Error) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        if matches!(error, AppError::Unauthorized) {
            return Redirect::to("/login").into_response();
        }
        error.log();
        let mut page = (error.status(), error_page(&error)).into_response();
        error.set_retry_after(&mut page);
        page
    }
}

/// The page showing `error`'s message.
fn error_page(error: &AppError) -> Html<String> {
    let body = html! {
        p id="error" class="error" { (error.public_message()) }
        p { a href="/" { "Back to the shop" } }
    };
    bare_page("Something went wrong", body)
}

/// The HTML page (`Content-Type: text/html; charset=utf-8`) the shop
/// answers with `404` to a path it does not serve, for other front ends
/// of the shop's API to answer the same. It carries the footer when it is
/// rendered inside [`Footer::serve`](crate::Footer::serve).
pub fn not_found_page() -> String {
    error_page(&AppError::NotFound).0
}

/// What a page handler answers.
pub(super) type PageResult<T = Response> = Result<T, PageError>;

/// Any other path.
pub(crate) async fn not_found() -> PageError {
    PageError(AppError::NotFound)
}
