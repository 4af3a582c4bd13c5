//! Why an L2 step did not happen.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, SharedError};

/// Why an L2 step did not happen.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Redis {
        op: &'static str,
        source: SharedError,
    },
    Timeout {
        op: &'static str,
        after: Duration,
    },
    Unavailable {
        retry_in: Duration,
    },
}

impl Failure {
    pub(crate) fn into_error<E>(self) -> Error<E> {
        match self {
            Failure::Redis { op, source } => Error::Redis { op, source },
            Failure::Timeout { op, after } => Error::Timeout { op, after },
            Failure::Unavailable { retry_in } => Error::Unavailable { retry_in },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Redis { op, source } => write!(f, "redis `{op}` failed: {source}"),
            Failure::Timeout { op, after } => write!(f, "redis `{op}` timed out after {after:?}"),
            Failure::Unavailable { retry_in } => {
                write!(f, "redis bypassed for another {retry_in:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_redis_error_stays_reachable_behind_the_public_error() {
        let cause = redis::RedisError::from((redis::ErrorKind::Io, "connection reset"));
        let failure = Failure::Redis {
            op: "get",
            source: Arc::new(cause),
        };
        let Error::<std::io::Error>::Redis { op, source } = failure.into_error() else {
            panic!("a Redis failure must become Error::Redis");
        };
        assert_eq!(op, "get");
        assert!(source.downcast_ref::<redis::RedisError>().is_some());
    }
}
