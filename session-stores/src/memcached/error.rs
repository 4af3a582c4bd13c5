//! The Memcached store's own errors, carried inside
//! [`Error::Backend`](session_core::Error::Backend).

use std::io;
use std::time::Duration;

use super::client::ClientError;

/// What went wrong talking to Memcached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum MemcachedStoreError {
    #[error("no Memcached node given (expected `host:port[,host:port…]`)")]
    NoNodes,
    #[error("invalid Memcached node {0:?} (expected `host:port`)")]
    InvalidNode(String),
    #[error(
        "invalid key prefix {0:?}: Memcached keys cannot hold spaces or control characters, and the prefix must leave room for the session ID in 250 bytes"
    )]
    InvalidPrefix(String),
    #[error("no Memcached node answers: {0}")]
    NoNodeAnswers(String),
    #[error("cannot connect to Memcached at {node}: {source}")]
    Connect {
        node: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to Memcached at {node} within {after:?}")]
    ConnectTimeout { node: String, after: Duration },
    #[error("Memcached {op} on {node} failed: {source}")]
    Call {
        node: String,
        op: &'static str,
        #[source]
        source: ClientError,
    },
    #[error("Memcached {node}: {message}")]
    Protocol { node: String, message: String },
}
