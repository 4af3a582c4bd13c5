//! The connection the store sends its commands over: one multiplexed,
//! auto-reconnecting connection to a single node, or a cluster connection.

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisResult};

/// A single node or a cluster; cloning shares the connection.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Sends `cmd` and waits for its reply.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    /// What the near cache (redis-rs's client-side cache) counted so far.
    #[cfg(feature = "metrics")]
    pub(super) fn cache_statistics(&self) -> Option<redis::caching::CacheStatistics> {
        match self {
            Conn::Single(c) => c.get_cache_statistics(),
            Conn::Cluster(c) => c.get_cache_statistics(),
        }
    }

    /// "single node" or "cluster", for `Debug`.
    pub(super) fn mode(&self) -> &'static str {
        match self {
            Conn::Single(_) => "single node",
            Conn::Cluster(_) => "cluster",
        }
    }
}
