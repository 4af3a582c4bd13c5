//! The shop's errors: [`StartError`] when a backend cannot be used at
//! start-up, [`AppError`] when a request fails.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cart::MAX_QTY;

/// A backend that could not be used at start-up, naming the variable that
/// points to it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
#[non_exhaustive]
pub struct StartError {
    /// The environment variable.
    pub var: &'static str,
    /// What went wrong.
    pub reason: String,
}

impl StartError {
    /// The error of the setting `var`.
    pub fn new(var: &'static str, reason: String) -> Self {
        StartError { var, reason }
    }
}

/// What handlers can fail with. The JSON API answers
/// `{"error": "<message>"}` with the status of [`AppError::status`]; the
/// pages show the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The session could not be read or saved.
    #[error(transparent)]
    Session(#[from] session_core::Error),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] db_router::Error),
    /// The product cache failed.
    #[error("product lookup failed: {0}")]
    Cache(#[from] cache_aside::Error<db_router::Error>),
    /// No product has this SKU.
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    /// A quantity outside `1..=MAX_QTY`.
    #[error("quantity must be between 1 and {MAX_QTY}")]
    BadQuantity,
    /// Nothing here.
    #[error("not found")]
    NotFound,
    /// The request needs a logged-in user.
    #[error("log in first")]
    Unauthorized,
    /// Wrong e-mail or password.
    #[error("wrong e-mail or password")]
    BadCredentials,
    /// A password change with a wrong current password.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Listing or signing out a user's sessions with a session store that
    /// cannot (the cookie store).
    #[error(
        "signed-in devices cannot be listed or signed out with this session store (cookie); \
         a server-side store can"
    )]
    NoUserSessions,
    /// A session handle that is not one.
    #[error("not a session handle")]
    BadHandle,
    /// Too many failed log-ins; try again after this many seconds.
    #[error("too many failed log-ins, try again in {0} s")]
    RateLimited(u64),
    /// Sign-up with an e-mail that has an account.
    #[error("this e-mail already has an account")]
    EmailTaken,
    /// A form or JSON field that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// A form without the session's CSRF token.
    #[error("the form expired, reload the page and try again")]
    Csrf,
    /// Checkout of an empty cart.
    #[error("the cart is empty")]
    EmptyCart,
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(String),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Database(e.into())
    }
}

fn database_status(e: &db_router::Error) -> StatusCode {
    use db_router::Error as E;
    match e {
        E::Database(inner) => match **inner {
            // A conversation with the server cut off (`Protocol`: say a
            // connection closed mid-handshake while the database's address
            // moves to a promoted replica) is the database being away too.
            sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StatusCode::SERVICE_UNAVAILABLE,
            // SQLSTATE class 08 (connection exception) and 57P (the server
            // shutting down or terminating the connection): the database
            // is unavailable, not the request wrong.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        E::NoReplicaAvailable { .. } | E::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Session(e) => e.status(),
            AppError::Database(e) => database_status(e),
            AppError::Cache(e) => match e.loader_error() {
                Some(e) => database_status(e),
                None => StatusCode::SERVICE_UNAVAILABLE,
            },
            AppError::UnknownProduct(_) | AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadQuantity | AppError::Invalid(_) | AppError::EmptyCart => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::EmailTaken => StatusCode::CONFLICT,
            AppError::Csrf | AppError::WrongPassword => StatusCode::FORBIDDEN,
            AppError::BadHandle => StatusCode::BAD_REQUEST,
            AppError::NoUserSessions => StatusCode::NOT_IMPLEMENTED,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the client: server-side details stay in the
    /// log.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Session(e) => e.public_message().to_owned(),
            e @ AppError::NoUserSessions => e.to_string(),
            e if e.status().is_server_error() => {
                "the shop cannot answer right now, try again shortly".to_owned()
            }
            e => e.to_string(),
        }
    }

    /// The seconds of the `Retry-After` header, when the client should try
    /// again later: after a rate limit, or when a backend is unavailable.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited(secs) => Some(*secs),
            e if e.status() == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        }
    }

    /// Adds `Retry-After` to `response` when [`retry_after`](Self::retry_after) says so.
    pub(crate) fn set_retry_after(&self, response: &mut Response) {
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }

    /// Logs a server-side failure; client errors (and features the
    /// session store lacks) are not logged.
    pub fn log(&self) {
        if self.status().is_server_error() && !matches!(self, AppError::NoUserSessions) {
            // The whole chain: a cache error's own text does not name the
            // loader's failure behind it.
            let mut error = self.to_string();
            let mut source = std::error::Error::source(self);
            while let Some(e) = source {
                let text = e.to_string();
                if !error.ends_with(&text) {
                    error.push_str(": ");
                    error.push_str(&text);
                }
                source = e.source();
            }
            tracing::error!(%error, "request failed");
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.public_message() })),
        )
            .into_response();
        self.set_retry_after(&mut response);
        response
    }
}
