//! Real processes for end-to-end tests: shop instances and HAProxy, plus
//! the places tests keep their files.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The shop's settings; see `shop::Config`.
const SHOP_VARS: &[&str] = &[
    "SHOP_ADDR",
    "ADMIN_ADDR",
    "SHOP_DATA_DIR",
    "SESSION_STORE",
    "SESSION_MAX_ATTEMPTS",
    "SESSION_STORE_TIMEOUT_MS",
    "REDIS_URL",
    "REDIS_CLUSTER_URLS",
    "REDIS_NEAR_CACHE",
    "DYNAMODB_ENDPOINT",
    "DYNAMODB_TABLE",
    "DATABASE_URL",
    "DATABASE_REPLICA_URLS",
    "CACHE",
    "COOKIE_KEYS",
    "COOKIE_SECURE",
];

/// One shop process.
#[derive(Debug)]
pub struct Shop {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Shop {
    /// Starts the shop binary `bin` (in a test of this package:
    /// `env!("CARGO_BIN_EXE_e2e-shop")`) with `env` (on a free port unless
    /// `SHOP_ADDR` is in `env`) and waits until it listens.
    ///
    /// # Panics
    ///
    /// If it does not start within 20 s.
    pub async fn start(bin: &str, env: &[(&str, &str)]) -> Shop {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !env.iter().any(|(k, _)| k == "SHOP_ADDR") {
            env.push(("SHOP_ADDR".into(), format!("127.0.0.1:{}", free_port())));
        }
        let addr = env
            .iter()
            .find(|(k, _)| k == "SHOP_ADDR")
            .and_then(|(_, v)| v.parse().ok())
            .expect("SHOP_ADDR is host:port");
        let mut shop = Shop {
            child: None,
            addr,
            bin: bin.into(),
            env,
        };
        shop.spawn().await;
        shop
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(&self.bin);
        // Only what the test passes configures the shop: settings inherited
        // from the test's own environment (say `REDIS_CLUSTER_URLS` from
        // the services script) would silently change the setup.
        for var in SHOP_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start the shop");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read shop output") {
                if line.contains("shop listening on") {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(ready, Ok(true)) {
            let status = child.try_wait().ok().flatten();
            panic!(
                "the shop on {} did not start ({}; its error is above); \
                 if it names a server's variable, {START_HINT} (env {:?})",
                self.addr,
                status.map_or("still running after 30 s".to_owned(), |s| s.to_string()),
                self.env
            );
        }
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// Kills the process at once (SIGKILL), like a lost instance.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same address with the same settings.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

/// How HAProxy spreads requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each request to the next instance.
    RoundRobin,
    /// Round-robin for a new client, then the instance named in HAProxy's
    /// `SERVERID` cookie.
    Sticky,
}

/// HAProxy in front of shop instances, with fast health checks.
#[derive(Debug)]
pub struct Haproxy {
    _child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Haproxy {
    /// Starts HAProxy on a free port balancing over `backends`.
    ///
    /// # Panics
    ///
    /// If `haproxy` is not installed (`scripts/services.sh up` installs it)
    /// or does not start.
    pub async fn start(backends: &[SocketAddr], balance: Balance) -> Haproxy {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("stateful-haproxy-{port}"));
        std::fs::create_dir_all(&dir).expect("haproxy dir");
        let sticky = balance == Balance::Sticky;
        let mut cfg = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 180s\n  timeout server 180s\n  \
             timeout queue 10s\n  timeout check 2s\n  retries 3\n  option redispatch\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend shops\n\
             backend shops\n  balance roundrobin\n  option httpchk GET /healthz\n{}",
            if sticky {
                "  cookie SERVERID insert indirect nocache\n"
            } else {
                ""
            }
        );
        for (i, b) in backends.iter().enumerate() {
            cfg.push_str(&format!(
                "  server s{i} {b} check inter 200ms fall 1 rise 2{}\n",
                if sticky {
                    format!(" cookie s{i}")
                } else {
                    String::new()
                }
            ));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run haproxy ({e}); run scripts/services.sh up, which installs it")
            });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let proxy = Haproxy {
            _child: child,
            addr,
            dir,
        };
        proxy.wait_healthy(backends.len()).await;
        proxy
    }

    /// Waits until `n` consecutive health requests through the proxy
    /// succeed.
    pub async fn wait_healthy(&self, n: usize) {
        let client = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.addr);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut ok = 0;
        while ok < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "haproxy on {} never became healthy",
                self.addr
            );
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => ok += 1,
                _ => {
                    ok = 0;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory whose name starts with `prefix`.
    ///
    /// # Panics
    ///
    /// If it cannot be created.
    pub fn new(prefix: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Several shop processes behind one HAProxy, sharing one database: the
/// `DATABASE_URL` of `env`, or else one SQLite file in a temporary
/// directory.
#[derive(Debug)]
pub struct Fleet {
    /// The instances, in HAProxy's order (`s0`, `s1`, …).
    pub shops: Vec<Shop>,
    /// The load balancer in front of them.
    pub lb: Haproxy,
    _data: Option<TempDir>,
}

impl Fleet {
    /// Starts `n` instances of the shop binary `bin` with `env`, one after
    /// the other (the first creates the database), then HAProxy.
    ///
    /// # Panics
    ///
    /// If a shop or HAProxy does not start.
    pub async fn start(bin: &str, n: usize, env: &[(&str, &str)], balance: Balance) -> Fleet {
        let data = (!env
            .iter()
            .any(|(k, _)| *k == "DATABASE_URL" || *k == "SHOP_DATA_DIR"))
        .then(|| TempDir::new("stateful-shop-data"));
        let dir = data
            .as_ref()
            .map(|d| d.path().to_string_lossy().into_owned());
        let mut env: Vec<(&str, &str)> = env.to_vec();
        if let Some(dir) = &dir {
            env.push(("SHOP_DATA_DIR", dir));
        }
        let mut shops = Vec::with_capacity(n);
        for _ in 0..n {
            shops.push(Shop::start(bin, &env).await);
        }
        let addrs: Vec<SocketAddr> = shops.iter().map(|s| s.addr).collect();
        let lb = Haproxy::start(&addrs, balance).await;
        Fleet {
            shops,
            lb,
            _data: data,
        }
    }

    /// The load balancer's base URL.
    pub fn url(&self) -> String {
        self.lb.url()
    }
}

/// Where tests leave files for people to look at:
/// `$CARGO_TARGET_DIR/e2e-artifacts` (default `target/e2e-artifacts` in the
/// workspace), created if missing.
///
/// # Panics
///
/// If it cannot be created.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    let dir = target.join("e2e-artifacts");
    std::fs::create_dir_all(&dir).expect("create the e2e artifacts directory");
    dir
}

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

/// Writes `message` to the test's standard error as a line, past the test
/// harness's output capture, so that it shows in a plain `cargo test`.
pub fn say(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// The hint every test that misses a server or a tool gives.
pub const START_HINT: &str = "start the test servers (and install the tools) with \
     `eval \"$(scripts/services.sh up)\"`";

/// Fails the test, naming `var` and how to start the servers, unless the
/// host and port of `url` accept a TCP connection.
///
/// # Panics
///
/// If the server cannot be reached.
pub async fn require_server(var: &str, url: &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let connect = tokio::net::TcpStream::connect(hostport.to_owned());
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("cannot reach {var}={url}: {e}; {START_HINT}"),
        Err(_) => panic!("cannot reach {var}={url}: no answer within 3 s; {START_HINT}"),
    }
}

/// The value of the environment variable `var`, or `default` (what
/// `scripts/services.sh` uses) when it is unset.
pub fn service_env(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A unique suffix for names of databases, tables and accounts, so that
/// reruns never collide.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos:x}", std::process::id())
}

/// The database URL `base` with its database name replaced by `name`.
pub fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = base
        .split_once('?')
        .map_or((base, None), |(a, q)| (a, Some(q)));
    let (server, _) = without_query
        .rsplit_once('/')
        .filter(|(s, _)| s.contains("://") && s.len() > s.find("://").unwrap() + 3)
        .unwrap_or((without_query, ""));
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@h:1/stateful", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            with_database("mysql://root@h:3306/stateful?ssl-mode=disabled", "y"),
            "mysql://root@h:3306/y?ssl-mode=disabled"
        );
    }
}
