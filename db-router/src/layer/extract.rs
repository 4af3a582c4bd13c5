//! The axum extractor for [`DbHandle`].

use std::fmt;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::DbHandle;
use crate::backend::RoutedDatabase;

/// Rejection of the [`DbHandle`] extractor: the request did not pass
/// through [`RouterLayer`](super::RouterLayer) (or one for another
/// database type). Answers `500 Internal Server Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingRouterLayer;

impl fmt::Display for MissingRouterLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "`DbHandle` is missing from the request extensions: is `RouterLayer` installed \
             for this route, with the same database type?",
        )
    }
}

impl std::error::Error for MissingRouterLayer {}

impl IntoResponse for MissingRouterLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S, DB> FromRequestParts<S> for DbHandle<DB>
where
    S: Send + Sync,
    DB: RoutedDatabase,
{
    type Rejection = MissingRouterLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<DbHandle<DB>>()
            .cloned()
            .ok_or(MissingRouterLayer)
    }
}
