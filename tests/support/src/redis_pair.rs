//! A private Redis primary with one replica: the shape of a non-cluster
//! ElastiCache replication group, for tests that kill, pause, promote and
//! demote its nodes.

use std::time::Duration;

use crate::redis::{
    RedisConfig, RedisServer, info_field, node_info, replica_of, wait_replica_linked,
};
use crate::wait_until;

/// A primary and a replica of it, each a [`RedisServer`] of its own,
/// killed when dropped. Which one is the primary changes when a test
/// promotes the replica; the fields keep their names.
#[derive(Debug)]
pub struct RedisPair {
    /// The node started as the primary.
    pub primary: RedisServer,
    /// The node started as its replica.
    pub replica: RedisServer,
}

impl RedisPair {
    /// Starts a primary set up as `config` and a replica of it set up the
    /// same way, and waits until the replica's link is up.
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing or the replica does not link within
    /// 10 s.
    pub async fn start(config: RedisConfig) -> RedisPair {
        let primary = RedisServer::start(config.clone()).await;
        let replica = RedisServer::start(config.with_replica_of(primary.port)).await;
        wait_replica_linked(replica.port, Duration::from_secs(10)).await;
        RedisPair { primary, replica }
    }

    /// Promotes the replica (`REPLICAOF NO ONE`), as a failover does once
    /// the primary is gone.
    pub async fn promote_replica(&self) {
        replica_of(self.replica.port, None).await;
    }

    /// A planned switch while both run, as a managed switchover does it:
    /// the replica first catches up with every write the primary had
    /// acknowledged when this was called, then becomes the primary and the
    /// old primary its replica (`REPLICAOF` on each), after which the old
    /// primary answers writes with `READONLY`. Writes acknowledged while
    /// the replica catches up may still be lost, as in any asynchronous
    /// switch.
    ///
    /// # Panics
    ///
    /// If the replica does not catch up within 10 s.
    pub async fn swap_roles(&self) {
        let (primary, replica) = (self.primary.port, self.replica.port);
        let wanted = replication_offset(primary, "master_repl_offset").await;
        wait_until(
            &format!("the replica on :{replica} at offset {wanted} of :{primary}"),
            Duration::from_secs(10),
            || async move { replication_offset(replica, "slave_repl_offset").await >= wanted },
        )
        .await;
        replica_of(self.replica.port, None).await;
        replica_of(self.primary.port, Some(self.replica.port)).await;
    }
}

/// The replication offset `field` in `INFO replication` of the server on
/// loopback `port` (0 when it does not answer).
async fn replication_offset(port: u16, field: &str) -> u64 {
    let info = node_info(port, "replication").await.unwrap_or_default();
    info_field(&info, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::role;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn roles_swap_and_writes_replicate() {
        let pair = RedisPair::start(RedisConfig::new()).await;
        assert_eq!(role(pair.primary.port).await.as_deref(), Some("master"));
        assert_eq!(role(pair.replica.port).await.as_deref(), Some("slave"));
        let mut c = pair
            .primary
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let acked: i64 = redis::pipe()
            .cmd("SET")
            .arg("k")
            .arg("v")
            .ignore()
            .cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query_async::<(i64,)>(&mut c)
            .await
            .unwrap()
            .0;
        assert_eq!(acked, 1);
        pair.swap_roles().await;
        assert_eq!(role(pair.replica.port).await.as_deref(), Some("master"));
        assert_eq!(role(pair.primary.port).await.as_deref(), Some("slave"));
        wait_replica_linked(pair.primary.port, Duration::from_secs(10)).await;
        let mut c = pair
            .replica
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let v: String = redis::cmd("GET")
            .arg("k")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(v, "v");
    }
}
