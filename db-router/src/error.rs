//! The crate's error type.

use std::error::Error as StdError;

use crate::fallback::FallbackReason;
use crate::token::ParseTokenError;

/// A boxed error from a [`TokenCarrier`](crate::TokenCarrier) or another
/// pluggable component.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while routing a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database driver reported an error (connecting, acquiring a
    /// connection, or running a probe).
    #[error("database error: {0}")]
    Database(#[source] Box<sqlx::Error>),

    /// No replica could serve a read and the router is configured with
    /// [`ReadFallback::Fail`](crate::ReadFallback::Fail).
    #[error(
        "no replica can serve this read ({reason}) and falling back to the primary is disabled"
    )]
    NoReplicaAvailable {
        /// Why no replica was usable.
        reason: FallbackReason,
    },

    /// A causal token string could not be parsed.
    #[error(transparent)]
    InvalidToken(#[from] ParseTokenError),

    /// A health probe or position query did not answer in time.
    #[error("{what} timed out")]
    Timeout {
        /// The operation that timed out.
        what: &'static str,
    },

    /// The router was configured inconsistently.
    #[error("invalid router configuration: {0}")]
    Config(String),

    /// A [`TokenCarrier`](crate::TokenCarrier) failed to load or store a
    /// token.
    #[error("causal token carrier failed: {0}")]
    Carrier(#[source] BoxError),
}

impl Error {
    /// Wraps any error raised by a [`TokenCarrier`](crate::TokenCarrier),
    /// for example a session store's error.
    pub fn carrier(error: impl Into<BoxError>) -> Self {
        Self::Carrier(error.into())
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(Box::new(error))
    }
}
