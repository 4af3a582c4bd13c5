//! The crate's error types: [`Error`] for cache calls, [`ConfigError`] for
//! a configuration that cannot work.

use std::sync::Arc;
use std::time::Duration;

/// A boxed error from a backend, so that no backend type appears in this
/// crate's API. Downcast it to inspect the cause (with the `redis` feature,
/// a `redis::RedisError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A backend error shared by every clone of an [`Error`]: like [`BoxError`],
/// but cheap to clone for the callers coalesced on one load.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A configuration that cannot work, found while building a cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The Redis URL given to
    /// [`CacheBuilder::with_redis_url`](crate::CacheBuilder::with_redis_url)
    /// (or a Sentinel URL given to
    /// [`CacheBuilder::with_redis_sentinel`](crate::CacheBuilder::with_redis_sentinel))
    /// is invalid, or needs support this build of the `redis` crate lacks
    /// (TLS for `rediss://`).
    #[error("invalid Redis URL")]
    RedisUrl(#[source] BoxError),

    /// [`CacheBuilder::with_redis_sentinel`](crate::CacheBuilder::with_redis_sentinel)
    /// was given no Sentinel URL.
    #[error("no Redis Sentinel URL given")]
    NoSentinel,
}

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
    #[error("redis command `{op}` failed")]
    Redis {
        /// The cache operation that issued the command.
        op: &'static str,
        /// The client's error (a `redis::RedisError`).
        #[source]
        source: SharedError,
    },

    /// A Redis command did not answer within the configured timeout.
    #[error("redis command `{op}` timed out after {after:?}")]
    Timeout {
        /// The cache operation that issued the command.
        op: &'static str,
        /// The configured per-command timeout.
        after: Duration,
    },

    /// L2 (Redis) is considered down (a recent command failed) and the
    /// cache fails closed, so the loader was not called.
    #[error("L2 (Redis) is unavailable after a recent failure; next attempt in {retry_in:?}")]
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
