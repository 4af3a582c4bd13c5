//! The session error type.

use std::time::Duration;

/// A boxed error from a store's backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a session.
///
/// Stores convert their backend errors into [`Error::Backend`] (see
/// [`Error::backend`]), so no backend type appears here. Each variant maps
/// to an HTTP status through [`Error::status`]; behind the `axum` feature the
/// error is also an `IntoResponse`, so a handler can return it with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store's backend failed or could not be reached.
    #[error("session store unavailable: {0}")]
    Backend(#[source] BoxError),

    /// A store call did not finish within the configured timeout.
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),

    /// Concurrent writers kept winning: the change was re-applied on fresh
    /// data this many times without a successful save.
    #[error("session changed concurrently; gave up after {attempts} attempts")]
    Conflict {
        /// How many saves were attempted.
        attempts: u32,
    },

    /// The session would exceed the store's size limit. Nothing was written;
    /// the previous state is intact.
    #[error("session too large: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size the session would have had.
        size: usize,
        /// The store's limit.
        limit: usize,
    },

    /// A value could not be converted to or from its stored form.
    #[error("session value (de)serialization failed: {0}")]
    Serde(#[from] crate::store::ValueError),

    /// A stored record could not be decoded.
    #[error(transparent)]
    Decode(#[from] crate::store::DecodeError),

    /// A record could not be encoded.
    #[error(transparent)]
    Encode(#[from] crate::store::EncodeError),

    /// The store cannot do this: the per-user session index (listing and
    /// revoking a user's sessions) with a client-side store, whose sessions
    /// live only in their cookies, or with a server-side store that does
    /// not implement it. A configuration error: `501 Not Implemented`.
    /// [`SessionLayer::supports_user_sessions`](crate::SessionLayer::supports_user_sessions)
    /// tells beforehand.
    #[error("the session store does not support {operation}")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
    },
}

impl Error {
    /// Wraps any backend error.
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Error::Backend(err.into())
    }

    /// The HTTP status that best describes this error to a client:
    /// `503` when the store is down or slow, or the session was stored by
    /// a newer build in a format this one does not know (during a rolling
    /// upgrade, a retry may reach an instance that does); `409` for an
    /// unresolved conflict, `413` for an oversized session, `501` for an
    /// operation the store does not support, `500` otherwise.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            Error::Backend(_)
            | Error::Timeout(_)
            | Error::Decode(crate::store::DecodeError::UnknownFormat(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            Error::Serde(_) | Error::Decode(_) | Error::Encode(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The `Retry-After` header value (in seconds) of a response for this
    /// error: a store that is down or slow is worth trying again shortly.
    pub(crate) fn retry_after(&self) -> Option<http::HeaderValue> {
        (self.status() == http::StatusCode::SERVICE_UNAVAILABLE)
            .then(|| http::HeaderValue::from_static("1"))
    }

    /// A short message safe to show to a client (no backend details).
    pub fn public_message(&self) -> &'static str {
        match self {
            Error::Backend(_) | Error::Timeout(_) => "session store unavailable, try again shortly",
            Error::Decode(crate::store::DecodeError::UnknownFormat(_)) => {
                "session stored by a newer version, try again shortly"
            }
            Error::Conflict { .. } => "session changed concurrently, try again",
            Error::TooLarge { .. } => "session data too large",
            Error::Unsupported { .. } => "not supported by the session store",
            Error::Serde(_) | Error::Decode(_) | Error::Encode(_) => "session data error",
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Serde(crate::store::ValueError::new(error.to_string()))
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Error {
    fn into_response(self) -> axum_core::response::Response {
        tracing::warn!(error = %self, "session error");
        let mut res = (self.status(), self.public_message()).into_response();
        if let Some(after) = self.retry_after() {
            res.headers_mut().insert(http::header::RETRY_AFTER, after);
        }
        res
    }
}
