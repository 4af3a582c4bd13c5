//! `ResponseError` for the session error.

use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};

use crate::Error;

/// The same answer as the axum `IntoResponse`: the error's status, its
/// client-safe message as plain text, and `Retry-After` when the store is
/// down or slow.
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        super::status(self.status())
    }

    fn error_response(&self) -> HttpResponse {
        tracing::warn!(error = %self, "session error");
        let mut res = HttpResponse::build(self.status_code());
        if let Some(after) = super::retry_after(self) {
            res.insert_header((RETRY_AFTER, after));
        }
        res.content_type("text/plain; charset=utf-8")
            .body(self.public_message())
    }
}
