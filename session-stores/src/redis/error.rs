//! The Redis store's own errors, carried inside
//! [`Error::Backend`](session_core::Error::Backend).

use redis::RedisError;

/// What went wrong talking to Redis, beyond what
/// [`session_core::Error`] names itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum RedisStoreError {
    #[error("cannot connect to Redis: {0}")]
    Connect(#[source] RedisError),
    #[error(
        "cannot connect to Redis over TLS: no rustls crypto provider is installed for this \
         process; install one before connecting, e.g. \
         `rustls::crypto::ring::default_provider().install_default()` at the start of `main`"
    )]
    NoCryptoProvider,
    #[error(
        "the near cache needs a connection that the store opens itself: use `connect`, \
         `connect_cluster` or `connect_with_client` instead of {0}, or leave the near cache off"
    )]
    NearCacheNeedsOwnConnection(&'static str),
    #[error("no Redis Sentinel URL given")]
    NoSentinel,
    #[error("Redis {op} failed: {source}")]
    Command {
        op: &'static str,
        #[source]
        source: RedisError,
    },
    #[error(
        "Redis {op} is not known to be durable: {acked} of {wanted} replicas confirmed it within \
         {timeout:?}, so a failover could undo it"
    )]
    NotReplicated {
        op: &'static str,
        acked: i64,
        wanted: u32,
        timeout: std::time::Duration,
    },
    #[error("Redis {op} script replied {reply}, expected 0 or 1")]
    UnexpectedReply { op: &'static str, reply: i64 },
}
