//! Redis for tests: the shared servers' settings ([`shared_url`],
//! [`cluster_urls`], [`tls_url`], [`tls_acl_url`], [`tls_ca`]) and private
//! `redis-server`s that a test may kill, pause and restart without
//! touching the shared ones.
//!
//! A private server is described by a [`RedisConfig`]: plain or TLS
//! ([`TlsFiles`]), with or without an append-only file synced on every
//! write, with an ACL user, as a replica of another private server, and
//! with any other `redis-server` argument. [`RedisCluster`] starts Cluster
//! nodes from the same description, with or without replicas.
//!
//! Sentinel fits the same shape: a primary started with
//! [`RedisServer::start`], replicas started
//! [`with_replica_of`](RedisConfig::with_replica_of) it, and sentinels
//! (`redis-server --sentinel` with a `sentinel monitor` line naming the
//! primary's port) run by a [`Process`] in the same way.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::env::{START_HINT, service_env};
use crate::ports::free_port_with_neighbour;
use crate::process::Process;
use crate::services::tls_dir;
use crate::tempdir::TempDir;
use crate::wait::wait_until;

// ---- the shared servers ------------------------------------------------------

/// The shared single node: `REDIS_URL`.
pub fn shared_url() -> String {
    service_env("REDIS_URL")
}

/// The shared Cluster's nodes: `REDIS_CLUSTER_URLS`, split at commas.
pub fn cluster_urls() -> Vec<String> {
    service_env("REDIS_CLUSTER_URLS")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The shared TLS server: `REDIS_TLS_URL`.
pub fn tls_url() -> String {
    service_env("REDIS_TLS_URL")
}

/// The shared TLS server as its ACL user: `REDIS_TLS_ACL_URL`.
pub fn tls_acl_url() -> String {
    service_env("REDIS_TLS_ACL_URL")
}

/// The PEM of the CA that signed the TLS servers' certificate
/// (`REDIS_TLS_CA`).
///
/// # Panics
///
/// If it cannot be read, naming [`START_HINT`].
pub fn tls_ca() -> Vec<u8> {
    let path = service_env("REDIS_TLS_CA");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read REDIS_TLS_CA={path}: {e}; {START_HINT}"))
}

// ---- what a private server is -------------------------------------------------

/// The certificate files a TLS server uses.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server's certificate (for 127.0.0.1, ::1 and localhost).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The shared test certificates made by `scripts/services.sh up`: the
    /// directory of `REDIS_TLS_CA`.
    ///
    /// # Panics
    ///
    /// If a file is missing, naming [`START_HINT`].
    pub fn shared() -> TlsFiles {
        let dir = std::env::var_os("REDIS_TLS_CA")
            .filter(|v| !v.is_empty())
            .and_then(|ca| PathBuf::from(ca).parent().map(PathBuf::from))
            .unwrap_or_else(tls_dir);
        let files = TlsFiles {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        };
        for f in [&files.ca, &files.cert, &files.key] {
            assert!(f.is_file(), "{} is missing; {START_HINT}", f.display());
        }
        files
    }
}

/// How a private `redis-server` is set up; [`RedisConfig::default`] is a
/// plain server keeping nothing on disk.
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    persistent: bool,
    tls: Option<TlsFiles>,
    user: Option<(String, String)>,
    replica_of: Option<u16>,
    args: Vec<String>,
}

impl RedisConfig {
    /// A plain server keeping nothing on disk.
    pub fn new() -> RedisConfig {
        RedisConfig::default()
    }

    /// Every write is in the append-only file (`appendfsync always`) before
    /// Redis acknowledges it, so a restart keeps it.
    pub fn with_persistence(mut self) -> RedisConfig {
        self.persistent = true;
        self
    }

    /// TLS only (`tls-port`, plain port 0), no client certificate asked.
    pub fn with_tls(mut self, files: TlsFiles) -> RedisConfig {
        self.tls = Some(files);
        self
    }

    /// An ACL user `name` with `password` and full access, next to the
    /// default user.
    pub fn with_user(mut self, name: &str, password: &str) -> RedisConfig {
        self.user = Some((name.to_owned(), password.to_owned()));
        self
    }

    /// A replica of the plain private server on `primary_port`.
    pub fn with_replica_of(mut self, primary_port: u16) -> RedisConfig {
        self.replica_of = Some(primary_port);
        self
    }

    /// More `redis-server` arguments (`["--maxmemory", "1mb"]`); they come
    /// last, so they override what the other settings chose.
    pub fn with_args(mut self, args: &[&str]) -> RedisConfig {
        self.args.extend(args.iter().map(|s| (*s).to_owned()));
        self
    }

    fn command_line(&self, port: u16, dir: &TempDir) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |a: &[&str]| args.extend(a.iter().map(|s| (*s).to_owned()));
        let port = port.to_string();
        match &self.tls {
            None => push(&["--port", &port]),
            Some(tls) => push(&[
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                &tls.cert.to_string_lossy(),
                "--tls-key-file",
                &tls.key.to_string_lossy(),
                "--tls-ca-cert-file",
                &tls.ca.to_string_lossy(),
                "--tls-auth-clients",
                "no",
            ]),
        }
        push(&["--bind", "127.0.0.1", "--save", ""]);
        if self.persistent {
            push(&["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            push(&["--appendonly", "no"]);
        }
        if let Some((name, password)) = &self.user {
            let password = format!(">{password}");
            push(&["--user", name, "on", &password, "~*", "&*", "+@all"]);
        }
        if let Some(primary) = self.replica_of {
            push(&["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        args.extend(self.args.iter().cloned());
        args.push("--dir".into());
        args.push(dir.path().to_string_lossy().into_owned());
        args
    }
}

// ---- one private server -------------------------------------------------------

/// A private `redis-server` on a free port, killed and its directory
/// removed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1 (the TLS port of a TLS server).
    pub port: u16,
    config: RedisConfig,
    process: Process,
    dir: TempDir,
}

impl RedisServer {
    /// Starts one set up as `config` on a free port and waits until it
    /// answers PING.
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing or does not answer within 10 s.
    pub async fn start(config: RedisConfig) -> RedisServer {
        Self::start_on(free_port_with_neighbour(0), config).await
    }

    /// Like [`start`](Self::start), on `port` (a Cluster node needs
    /// `port + 10000` free too).
    pub async fn start_on(port: u16, config: RedisConfig) -> RedisServer {
        let dir = TempDir::new("test-support-redis");
        let args = config.command_line(port, &dir);
        let process = Process::new("redis-server", args, dir.join("redis.log"));
        let mut server = RedisServer {
            port,
            config,
            process,
            dir,
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// [`url`](Self::url) with the ACL user of
    /// [`with_user`](RedisConfig::with_user) in it.
    ///
    /// # Panics
    ///
    /// If the server has no such user.
    pub fn user_url(&self) -> String {
        let (name, password) = self.config.user.as_ref().expect("a server with a user");
        self.url()
            .replacen("://", &format!("://{name}:{password}@"), 1)
    }

    /// A client for a plain server.
    ///
    /// # Panics
    ///
    /// If the URL does not parse.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a Redis URL")
    }

    /// The process ID (`None` while killed).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Its data directory (append-only file, `nodes.conf`, log).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Kills it at once (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again (after [`kill`](Self::kill)) on the same port and
    /// directory, and waits until it answers.
    ///
    /// # Panics
    ///
    /// If it does not answer within 10 s.
    pub async fn restart(&mut self) {
        self.process.start();
        let what = format!("redis-server on :{}", self.port);
        wait_until(&what, Duration::from_secs(10), || self.ping()).await;
    }

    /// SIGSTOP: the process holds its connections but answers nothing.
    pub fn pause(&self) {
        self.process.pause();
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.process.resume();
    }

    /// Whether it answers PING (with `redis-cli` over TLS).
    pub async fn ping(&self) -> bool {
        match &self.config.tls {
            None => ping(self.port).await,
            Some(tls) => {
                let out = tokio::process::Command::new("redis-cli")
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--tls"])
                    .arg("--cacert")
                    .arg(&tls.ca)
                    .arg("ping")
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); {START_HINT}"));
                String::from_utf8_lossy(&out.stdout).trim() == "PONG"
            }
        }
    }
}

/// Whether the plain server on loopback `port` answers PING.
pub async fn ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut c)
        .await
        .is_ok()
}

// ---- a private cluster ---------------------------------------------------------

/// A private Redis Cluster.
#[derive(Debug)]
pub struct RedisCluster {
    /// Its nodes, masters first in the order `redis-cli --cluster create`
    /// was given them.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters × (1 + replicas)` nodes set up as `node` plus
    /// `cluster-node-timeout 1000`, creates the cluster with `redis-cli
    /// --cluster create --cluster-replicas <replicas>`, and waits until
    /// every node reports `cluster_state:ok` and, with replicas, every
    /// replica is linked to its master.
    ///
    /// # Panics
    ///
    /// If a node does not start, or the cluster does not form within 15 s.
    pub async fn start(masters: usize, replicas: usize, node: RedisConfig) -> RedisCluster {
        let mut config = RedisConfig {
            args: Vec::new(),
            ..node.clone()
        }
        .with_args(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
        ]);
        config.args.extend(node.args);
        let mut nodes = Vec::with_capacity(masters * (1 + replicas));
        for _ in 0..masters * (1 + replicas) {
            // The cluster bus listens on port + 10000.
            let port = free_port_with_neighbour(10_000);
            nodes.push(RedisServer::start_on(port, config.clone()).await);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); {START_HINT}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(15)).await;
        if replicas > 0 {
            cluster.wait_replicas_linked(replicas).await;
        }
        cluster
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Waits until every node reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// After `limit`.
    pub async fn wait_ok(&self, limit: Duration) {
        for n in &self.nodes {
            let port = n.port;
            wait_until(
                &format!("cluster_state:ok on :{port}"),
                limit,
                || async move { cluster_state(port).await.as_deref() == Some("ok") },
            )
            .await;
        }
    }

    /// Waits until every replica's link to its master is up and every
    /// master has `replicas` replicas: only then may a replica be promoted.
    async fn wait_replicas_linked(&self, replicas: usize) {
        let want = replicas.to_string();
        for n in &self.nodes {
            let port = n.port;
            let want = want.as_str();
            wait_until(
                &format!("the replicas of :{port} in sync"),
                Duration::from_secs(15),
                || async move {
                    let Some(info) = node_info(port, "replication").await else {
                        return false;
                    };
                    match info_field(&info, "role") {
                        Some("slave") => info_field(&info, "master_link_status") == Some("up"),
                        Some("master") => info_field(&info, "connected_slaves") == Some(want),
                        _ => false,
                    }
                },
            )
            .await;
        }
    }
}

/// `cluster_state` from `CLUSTER INFO` of the node on loopback `port`.
pub async fn cluster_state(port: u16) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut c)
        .await
        .ok()?;
    info_field(&info, "cluster_state").map(str::to_owned)
}

/// `INFO <section>` of the server on loopback `port`.
pub async fn node_info(port: u16, section: &str) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .ok()
}

/// The value of `name` in an `INFO` answer (`role` → `master`).
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_follows_its_primary_and_restarts() {
        let mut primary = RedisServer::start(RedisConfig::new().with_persistence()).await;
        let replica = RedisServer::start(RedisConfig::new().with_replica_of(primary.port)).await;
        let port = replica.port;
        wait_until(
            "the replica's link",
            Duration::from_secs(10),
            || async move {
                let info = node_info(port, "replication").await.unwrap_or_default();
                info_field(&info, "master_link_status") == Some("up")
            },
        )
        .await;
        let mut c = primary
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut c)
            .await
            .unwrap();
        primary.kill();
        assert!(!ping(primary.port).await);
        primary.restart().await;
        let mut c = primary
            .client()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let v: String = redis::cmd("GET")
            .arg("k")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(v, "v", "the append-only file kept the write");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tls_server_with_a_user_answers() {
        let server = RedisServer::start(
            RedisConfig::new()
                .with_tls(TlsFiles::shared())
                .with_user("u", "p"),
        )
        .await;
        assert!(server.ping().await);
        assert!(server.user_url().starts_with("rediss://u:p@127.0.0.1:"));
        let tls = TlsFiles::shared();
        let out = tokio::process::Command::new("redis-cli")
            .args(["-p", &server.port.to_string(), "--tls", "--cacert"])
            .arg(&tls.ca)
            .args(["--user", "u", "--pass", "p", "--no-auth-warning", "ping"])
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
    }

    #[test]
    fn info_fields() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n";
        assert_eq!(info_field(info, "role"), Some("master"));
        assert_eq!(info_field(info, "connected_slaves"), Some("1"));
        assert_eq!(info_field(info, "slave0"), None);
    }
}
