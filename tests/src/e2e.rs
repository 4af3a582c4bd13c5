//! Real processes for end-to-end tests: shop instances and HAProxy.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
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
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start the shop");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read shop output") {
                if line.contains("shop listening on") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "shop on {} did not start (env {:?})",
            self.addr,
            self.env
        );
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
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
             timeout queue 10s\n  retries 3\n  option redispatch\n\
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
