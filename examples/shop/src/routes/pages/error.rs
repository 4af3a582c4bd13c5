//! Errors shown as pages: a page with the message, or the log-in form when
//! the request needs a logged-in user.

use axum::response::{IntoResponse, Redirect, Response};
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
        let body = html! {
            p id="error" class="error" { (error.public_message()) }
            p { a href="/" { "Back to the shop" } }
        };
        let mut page = (error.status(), bare_page("Something went wrong", body)).into_response();
        error.set_retry_after(&mut page);
        page
    }
}

/// What a page handler answers.
pub(super) type PageResult<T = Response> = Result<T, PageError>;

/// Any other path.
pub(crate) async fn not_found() -> PageError {
    PageError(AppError::NotFound)
}
