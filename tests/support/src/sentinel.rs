//! Redis Sentinel for tests: a private primary, its replica and three
//! Sentinels (`redis-server --sentinel`) watching them, all on free
//! loopback ports, so that a test can kill the primary or ask for a
//! failover and watch a client follow; and the settings of the shared
//! group `scripts/services.sh` runs, for tests that only connect through
//! Sentinel (they must not fail it over).

use std::time::Duration;

use crate::env::{START_HINT, service_env};
use crate::ports::free_port;
use crate::process::Process;
use crate::redis::{RedisConfig, info_field, node_info};
use crate::redis_pair::RedisPair;
use crate::tempdir::TempDir;
use crate::wait::wait_until;

/// The name the Sentinels of a private [`SentinelGroup`] know the primary
/// by.
pub const MASTER_NAME: &str = "sessions";

/// The shared group's Sentinels (`REDIS_SENTINEL_URLS`, by default the
/// ports `SENTINEL_PORTS` of `services.env`).
pub fn shared_urls() -> Vec<String> {
    service_env("REDIS_SENTINEL_URLS")
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The name the shared group's Sentinels know its primary by
/// (`REDIS_SENTINEL_MASTER`).
pub fn shared_master() -> String {
    service_env("REDIS_SENTINEL_MASTER")
}

/// One `redis-server --sentinel` with its configuration file.
#[derive(Debug)]
pub struct Sentinel {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
    _dir: TempDir,
}

impl Sentinel {
    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A primary and a replica ([`RedisPair`]) watched by three Sentinels
/// with quorum 2, `down-after-milliseconds` 1000 and `failover-timeout`
/// 5000, so that a killed primary is replaced within a few seconds.
#[derive(Debug)]
pub struct SentinelGroup {
    /// The primary and the replica as started (roles change on failover).
    pub pair: RedisPair,
    /// The three Sentinels.
    pub sentinels: Vec<Sentinel>,
}

impl SentinelGroup {
    /// Starts the pair set up as `config`, then the Sentinels, and waits
    /// until every Sentinel knows the replica and the two other Sentinels
    /// (only then can they agree on a failover).
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing, or the group does not form within
    /// 20 s.
    pub async fn start(config: RedisConfig) -> SentinelGroup {
        let pair = RedisPair::start(config).await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = TempDir::new("test-support-sentinel");
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir = dir.path().display(),
                    primary = pair.primary.port,
                ),
            )
            .unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
            let mut process = Process::new(
                "redis-server",
                vec![conf.to_string_lossy().into_owned(), "--sentinel".into()],
                dir.join("sentinel.log"),
            );
            process.start();
            sentinels.push(Sentinel {
                port,
                process,
                _dir: dir,
            });
        }
        let group = SentinelGroup { pair, sentinels };
        for s in &group.sentinels {
            let port = s.port;
            wait_until(
                &format!(
                    "the Sentinel on :{port} to know the replica and its peers ({START_HINT})"
                ),
                Duration::from_secs(20),
                || async move {
                    let Some(master) = sentinel_master(port).await else {
                        return false;
                    };
                    field(&master, "num-slaves") == Some("1")
                        && field(&master, "num-other-sentinels") == Some("2")
                },
            )
            .await;
        }
        group
    }

    /// The Sentinels' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Sentinel::url).collect()
    }

    /// The primary's port as the first Sentinel that answers reports it.
    pub async fn master_port(&self) -> Option<u16> {
        for s in &self.sentinels {
            if let Some(addr) = master_addr(s.port).await {
                return Some(addr);
            }
        }
        None
    }

    /// Asks a Sentinel for a failover now (`SENTINEL FAILOVER`), without
    /// waiting for the primary to fail.
    ///
    /// # Panics
    ///
    /// If the Sentinel refuses.
    pub async fn failover(&self) {
        let client = redis::Client::open(self.sentinels[0].url()).expect("a URL");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a Sentinel");
        let _: () = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(MASTER_NAME)
            .query_async(&mut c)
            .await
            .expect("SENTINEL FAILOVER");
    }

    /// Waits until the Sentinels name a primary other than `old_port`
    /// and that node says it is a master.
    ///
    /// # Panics
    ///
    /// After `limit`.
    pub async fn wait_promoted(&self, old_port: u16, limit: Duration) -> u16 {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(port) = self.master_port().await.filter(|p| *p != old_port) {
                let info = node_info(port, "replication").await.unwrap_or_default();
                if info_field(&info, "role") == Some("master") {
                    return port;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {limit:?} waiting for a Sentinel failover"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `SENTINEL MASTER <name>` of the Sentinel on `port`, as name/value pairs.
async fn sentinel_master(port: u16) -> Option<Vec<(String, String)>> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    let flat: Vec<String> = redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(MASTER_NAME)
        .query_async(&mut c)
        .await
        .ok()?;
    Some(
        flat.chunks(2)
            .filter_map(|kv| Some((kv.first()?.clone(), kv.get(1)?.clone())))
            .collect(),
    )
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The master's port as the Sentinel on `port` reports it.
async fn master_addr(port: u16) -> Option<u16> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    let addr: Vec<String> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(MASTER_NAME)
        .query_async(&mut c)
        .await
        .ok()?;
    addr.get(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sentinels_promote_the_replica() {
        let group = SentinelGroup::start(RedisConfig::new()).await;
        let old = group.pair.primary.port;
        assert_eq!(group.master_port().await, Some(old));
        group.failover().await;
        let new = group.wait_promoted(old, Duration::from_secs(20)).await;
        assert_eq!(new, group.pair.replica.port);
    }
}
