//! The crate's error type.

use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong in a [`Cache`](crate::Cache) call.
///
/// `E` is the loader's error type ([`Loader::Error`](crate::Loader::Error)).
/// The error is cheap to clone: every coalesced caller of one load receives a
/// clone that shares the same `Arc<E>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The loader (the source of truth) failed. Failures are never cached:
    /// the next call runs the loader again.
    #[error("the loader failed")]
    Load(#[source] Arc<E>),

    /// A Redis command failed. Reads only return this in
    /// [`FailMode::Closed`](crate::FailMode::Closed); `invalidate` always does,
    /// because a lost invalidation must not go unnoticed.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[error("redis command `{op}` failed")]
    Redis {
        /// The cache operation that issued the command.
        op: &'static str,
        /// The client's error.
        #[source]
        source: Arc<redis::RedisError>,
    },

    /// A Redis command did not answer within the configured timeout.
    #[error("redis command `{op}` timed out after {after:?}")]
    Timeout {
        /// The cache operation that issued the command.
        op: &'static str,
        /// The configured per-command timeout.
        after: Duration,
    },

    /// The shared tier is considered down (a recent command failed) and the
    /// cache fails closed, so the loader was not called.
    #[error(
        "the shared cache tier is unavailable after a recent failure; next attempt in {retry_in:?}"
    )]
    Unavailable {
        /// Time left before the cache tries Redis again.
        retry_in: Duration,
    },
}

impl<E> Error<E> {
    /// The loader's error, if this is [`Error::Load`].
    pub fn loader_error(&self) -> Option<&Arc<E>> {
        match self {
            Error::Load(e) => Some(e),
            _ => None,
        }
    }
}

// Written by hand: a derive would require `E: Clone`, but every payload is
// already shared.
impl<E> Clone for Error<E> {
    fn clone(&self) -> Self {
        match self {
            Error::Load(e) => Error::Load(Arc::clone(e)),
            #[cfg(feature = "redis")]
            Error::Redis { op, source } => Error::Redis {
                op,
                source: Arc::clone(source),
            },
            Error::Timeout { op, after } => Error::Timeout { op, after: *after },
            Error::Unavailable { retry_in } => Error::Unavailable {
                retry_in: *retry_in,
            },
        }
    }
}
