//! The connection the store sends its commands over: one multiplexed,
//! auto-reconnecting connection to a single node, a cluster connection, or
//! a connection that follows a primary that moves.

use std::sync::Arc;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult};

use super::failover::{Following, Request};

/// A single node, a cluster, or a single primary that may move; cloning
/// shares the connection.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Following(Arc<Following>),
}

impl Conn {
    /// Sends `cmd` and waits for its reply.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        self.send(Request::Cmd(cmd)).await
    }

    /// Sends the commands of `pipe` in one round trip and waits for their
    /// replies (an error if any of them failed).
    pub(super) async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        self.send(Request::Pipe(pipe)).await
    }

    async fn send<T: FromRedisValue>(&self, request: Request<'_>) -> RedisResult<T> {
        match self {
            Conn::Single(c) => request.send(&mut c.clone()).await,
            Conn::Cluster(c) => request.send(&mut c.clone()).await,
            // Boxed: the reconnecting path nests deep enough to exceed
            // the compiler's layout depth in the callers.
            Conn::Following(f) => Box::pin(f.query(request)).await,
        }
    }

    /// What the near cache (redis-rs's client-side cache) counted so far.
    #[cfg(feature = "metrics")]
    pub(super) fn cache_statistics(&self) -> Option<redis::caching::CacheStatistics> {
        match self {
            Conn::Single(c) => c.get_cache_statistics(),
            Conn::Cluster(c) => c.get_cache_statistics(),
            Conn::Following(f) => f.cache_statistics(),
        }
    }

    /// The server commands go to now (`host:port`, or a Unix socket's
    /// path), for traces: `None` for a cluster, whose commands go to many,
    /// and for a connection the application opened.
    pub(super) fn server(&self) -> Option<Arc<str>> {
        match self {
            Conn::Single(_) | Conn::Cluster(_) => None,
            Conn::Following(f) => Some(f.addr()),
        }
    }

    /// "single node", "cluster" or "following a primary", for `Debug`.
    pub(super) fn mode(&self) -> &'static str {
        match self {
            Conn::Single(_) => "single node",
            Conn::Cluster(_) => "cluster",
            Conn::Following(_) => "following a primary",
        }
    }
}
