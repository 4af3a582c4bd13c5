//! Private backend servers for fault tests: a test that stops, pauses or
//! kills a server starts its own instance on a free port, so the shared
//! servers of `scripts/services.sh` are never touched.
//!
//! - [`RedisServer`]: one `redis-server`, optionally with an append-only
//!   file synced on every write;
//! - [`RedisCluster`]: masters only, no replicas;
//! - [`Dynalite`]: the DynamoDB emulator installed by `scripts/services.sh`;
//! - [`PgPair`]: a PostgreSQL primary and its streaming replica, run as the
//!   `postgres` user in a temporary directory.
//!
//! Each one is stopped (SIGKILL, or `pg_ctl stop -m immediate`) and its
//! files removed when dropped, also when the test fails. A missing program
//! fails the test with a message saying how to install it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::{START_HINT, TempDir, workspace_dir};

/// A free loopback port whose neighbour `port + offset` is free too
/// (`offset` 0: just a free port).
fn free_port_with(offset: u16) -> u16 {
    for _ in 0..500 {
        let port = crate::e2e::free_port();
        if offset == 0 {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + offset)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port (with +{offset} free as well)");
}

/// Sends `signal` (such as `-STOP`) to process `pid` with `kill`.
///
/// # Panics
///
/// If `kill` fails.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Waits until `check` is true, polling every 50 ms.
///
/// # Panics
///
/// After `limit`, naming `what`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tcp_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

fn spawn(program: &str, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("create a server log");
    let err = out.try_clone().expect("clone the log handle");
    Command::new(program)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); {START_HINT}"))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ---- Redis -------------------------------------------------------------------

/// A private `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
    dir: TempDir,
}

/// PINGs `port` until it answers `PONG` (10 s at most).
///
/// # Panics
///
/// If it never does.
pub async fn wait_for_redis(port: u16) {
    let url = format!("redis://127.0.0.1:{port}");
    wait_for(
        &format!("redis-server on :{port}"),
        Duration::from_secs(10),
        || async {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return false;
            };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        },
    )
    .await;
}

impl RedisServer {
    /// Starts one on a free port. With `persistent`, every write is in the
    /// append-only file (`appendfsync always`) before Redis acknowledges
    /// it, so a restart from the same directory keeps it.
    pub async fn start(persistent: bool) -> RedisServer {
        Self::start_with(persistent, &[]).await
    }

    /// Like [`start`](Self::start), with more `redis-server` arguments.
    pub async fn start_with(persistent: bool, extra: &[&str]) -> RedisServer {
        let port = free_port_with(0);
        let dir = TempDir::new("stateful-faults-redis");
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let aof: &[&str] = if persistent {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        args.extend(aof.iter().chain(extra).map(|s| (*s).to_owned()));
        args.push("--dir".into());
        args.push(dir.path().to_string_lossy().into_owned());
        let mut server = RedisServer {
            port,
            child: None,
            args,
            dir,
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process ID (`None` while killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it at once (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again (after [`kill`](Self::kill)) on the same port and
    /// directory, and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let log = self.dir.path().join("redis.log");
        self.child = Some(spawn("redis-server", &self.args, &log));
        wait_for_redis(self.port).await;
    }

    /// SIGSTOP: the process holds its connections but answers nothing.
    pub fn pause(&self) {
        signal(self.pid().expect("running"), "-STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        signal(self.pid().expect("running"), "-CONT");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A private Redis Cluster of masters without replicas.
#[derive(Debug)]
pub struct RedisCluster {
    /// One server per master.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (append-only file on, synced every write),
    /// with `cluster-node-timeout 1000` and `extra` arguments, and creates
    /// the cluster with `redis-cli --cluster create --cluster-replicas 0`.
    ///
    /// # Panics
    ///
    /// If the cluster does not form within 15 s.
    pub async fn start(masters: usize, extra: &[&str]) -> RedisCluster {
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            // The cluster bus listens on port + 10000.
            let port = free_port_with(10_000);
            let dir = TempDir::new("stateful-faults-cluster");
            let mut args: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                "nodes.conf".into(),
                "--cluster-node-timeout".into(),
                "1000".into(),
            ];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            args.push("--dir".into());
            args.push(dir.path().to_string_lossy().into_owned());
            let mut node = RedisServer {
                port,
                child: None,
                args,
                dir,
            };
            node.restart().await;
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); {START_HINT}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        for n in &cluster.nodes {
            let port = n.port;
            wait_for(
                "cluster_state:ok on every node",
                Duration::from_secs(15),
                || async move { cluster_state(port).await.as_deref() == Some("ok") },
            )
            .await;
        }
        cluster
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// `cluster_state` from `CLUSTER INFO` of the node on `port`.
pub async fn cluster_state(port: u16) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut c)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("cluster_state:"))
        .map(|s| s.trim().to_owned())
}

// ---- dynalite ----------------------------------------------------------------

/// A private DynamoDB emulator (dynalite), keeping its tables in a LevelDB
/// directory so that they outlive a restart.
#[derive(Debug)]
pub struct Dynalite {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
    dir: TempDir,
}

impl Dynalite {
    /// Starts it on a free port and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// If dynalite is not installed in `.services/npm` or does not start.
    pub async fn start() -> Dynalite {
        let cli = workspace_dir().join(".services/npm/node_modules/dynalite/cli.js");
        assert!(
            cli.is_file(),
            "dynalite is not installed at {}; {START_HINT}",
            cli.display()
        );
        let port = free_port_with(0);
        let dir = TempDir::new("stateful-faults-dynalite");
        let args = vec![
            cli.to_string_lossy().into_owned(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--path".into(),
            dir.path().join("db").to_string_lossy().into_owned(),
            "--createTableMs".into(),
            "0".into(),
            "--deleteTableMs".into(),
            "0".into(),
            "--updateTableMs".into(),
            "0".into(),
        ];
        let mut server = Dynalite {
            port,
            child: None,
            args,
            dir,
        };
        server.restart().await;
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        let log = self.dir.path().join("dynalite.log");
        self.child = Some(spawn("node", &self.args, &log));
        let port = self.port;
        wait_for(
            &format!("dynalite on :{port}"),
            Duration::from_secs(20),
            || tcp_open(port),
        )
        .await;
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

// ---- PostgreSQL ----------------------------------------------------------------

/// A PostgreSQL primary and its streaming replica (`pg_basebackup -R`),
/// private to one test.
#[derive(Debug)]
pub struct PgPair {
    /// The primary's port.
    pub primary_port: u16,
    /// The replica's port.
    pub replica_port: u16,
    bin: PathBuf,
    dir: TempDir,
}

fn pg_bin() -> PathBuf {
    let bin = std::env::var("PG_BIN")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|p| p.join("initdb").is_file())
                .collect();
            found.sort();
            found.pop()
        });
    let bin = bin.unwrap_or_else(|| panic!("no PostgreSQL server found (PG_BIN); {START_HINT}"));
    assert!(
        bin.join("pg_ctl").is_file(),
        "PG_BIN={} has no pg_ctl; {START_HINT}",
        bin.display()
    );
    bin
}

/// Runs `program args…` as the `postgres` user from `/`.
fn as_postgres(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(program))
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} as postgres ({e}); {START_HINT}"))
}

fn check(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("append to the config");
}

impl PgPair {
    /// Creates the primary (`initdb`), starts it, creates the database
    /// `stateful`, clones the replica with `pg_basebackup -R` and starts
    /// it, then waits until it streams.
    ///
    /// # Panics
    ///
    /// If PostgreSQL is not installed, the `postgres` user is missing, or
    /// a step fails.
    pub async fn start() -> PgPair {
        let bin = pg_bin();
        let dir = TempDir::new("stateful-faults-pg");
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .expect("run chown");
        assert!(
            chown.success(),
            "cannot give {} to the postgres user (run as root; {START_HINT})",
            dir.path().display()
        );
        let primary_port = free_port_with(0);
        let mut replica_port = free_port_with(0);
        while replica_port == primary_port {
            replica_port = free_port_with(0);
        }
        let pair = PgPair {
            primary_port,
            replica_port,
            bin,
            dir,
        };
        let primary = pair.data("primary");
        let out = as_postgres(
            &pair.bin,
            "initdb",
            &[
                "-D",
                &primary,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ],
        );
        check("initdb", &out);
        append(
            &Path::new(&primary).join("postgresql.conf"),
            &format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {primary_port}\n\
                 unix_socket_directories = ''\nmax_connections = 100\nwal_level = replica\n\
                 max_wal_senders = 5\nwal_keep_size = '256MB'\nhot_standby = on\n\
                 wal_retrieve_retry_interval = '200ms'\nfsync = off\n"
            ),
        );
        pair.start_primary().await;
        let admin = pair.connect(primary_port, "postgres").await;
        sqlx::query("CREATE DATABASE stateful")
            .execute(&admin)
            .await
            .expect("create database stateful");
        admin.close().await;
        let replica = pair.data("replica");
        let out = as_postgres(
            &pair.bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &replica,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-N",
            ],
        );
        check("pg_basebackup", &out);
        append(
            &Path::new(&replica).join("postgresql.conf"),
            &format!("\nport = {replica_port}\n"),
        );
        pair.start_replica().await;
        pair.wait_streaming().await;
        pair
    }

    fn data(&self, which: &str) -> String {
        self.dir.path().join(which).to_string_lossy().into_owned()
    }

    fn pg_ctl(&self, which: &str, args: &[&str]) {
        let data = self.data(which);
        let log = self.dir.path().join(format!("{which}.log"));
        let log = log.to_string_lossy();
        let mut all = vec!["-D", &data, "-l", &log, "-w", "-t", "30"];
        all.extend_from_slice(args);
        let out = as_postgres(&self.bin, "pg_ctl", &all);
        if !out.status.success() {
            let tail = std::fs::read_to_string(self.dir.path().join(format!("{which}.log")))
                .unwrap_or_default();
            let start = tail.len().saturating_sub(2000);
            panic!(
                "pg_ctl {args:?} ({which}) failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                &tail[start..]
            );
        }
    }

    /// URL of the database `name` on the primary.
    pub fn primary_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.primary_port)
    }

    /// URL of the database `name` on the replica.
    pub fn replica_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.replica_port)
    }

    /// A small pool to `database` on `port`.
    ///
    /// # Panics
    ///
    /// If it cannot connect within 10 s.
    pub async fn connect(&self, port: u16, database: &str) -> sqlx::PgPool {
        let url = format!("postgres://postgres@127.0.0.1:{port}/{database}");
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
    }

    /// Starts the primary (`pg_ctl start`, waiting until it accepts
    /// connections).
    pub async fn start_primary(&self) {
        self.pg_ctl("primary", &["start"]);
        let port = self.primary_port;
        wait_for("the primary", Duration::from_secs(20), || tcp_open(port)).await;
    }

    /// Stops the primary (`pg_ctl stop -m fast`).
    pub fn stop_primary(&self) {
        self.pg_ctl("primary", &["-m", "fast", "stop"]);
    }

    /// Starts the replica.
    pub async fn start_replica(&self) {
        self.pg_ctl("replica", &["start"]);
        let port = self.replica_port;
        wait_for("the replica", Duration::from_secs(20), || tcp_open(port)).await;
    }

    /// Stops the replica (`pg_ctl stop -m fast`).
    pub fn stop_replica(&self) {
        self.pg_ctl("replica", &["-m", "fast", "stop"]);
    }

    /// Waits until the replica streams from the primary (30 s at most).
    ///
    /// # Panics
    ///
    /// If it does not.
    pub async fn wait_streaming(&self) {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.replica_port
        );
        wait_for(
            "the replica to stream from the primary",
            Duration::from_secs(30),
            || async {
                let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(2))
                    .connect(&url)
                    .await
                else {
                    return false;
                };
                let streaming: Result<i64, _> = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                )
                .fetch_one(&pool)
                .await;
                pool.close().await;
                matches!(streaming, Ok(1))
            },
        )
        .await;
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        for which in ["replica", "primary"] {
            let data = self.data(which);
            if Path::new(&data).join("postmaster.pid").exists() {
                let _ = as_postgres(
                    &self.bin,
                    "pg_ctl",
                    &["-D", &data, "-m", "immediate", "-w", "stop"],
                );
            }
        }
    }
}
