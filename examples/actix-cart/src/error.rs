//! `ApiError`: the shop's errors as actix-web responses, and the shop's
//! plain-text refusals.

use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};
use shop::AppError;

/// A failed request, answered as the shop's JSON API answers it:
/// `{"error": "<message>"}` with the status of [`AppError::status`], and
/// `Retry-After` when the shop would send it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl From<session_core::Error> for ApiError {
    fn from(e: session_core::Error) -> Self {
        ApiError(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.0.retry_after() {
            res.insert_header((RETRY_AFTER, secs));
        }
        res.json(serde_json::json!({ "error": self.0.public_message() }))
    }
}

/// `status` with `message` as `text/plain; charset=utf-8`, as the shop
/// refuses a request before its handler runs (a body too large, not JSON,
/// malformed).
pub(crate) fn plain(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(message.into())
}
