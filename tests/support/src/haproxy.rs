//! HAProxy in front of local servers (the shop's instances), with fast
//! health checks; `scripts/services.sh up` installs it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ports::free_port;
use crate::process::Process;
use crate::tempdir::TempDir;

/// How HAProxy spreads requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Each request to the next instance.
    RoundRobin,
    /// Round-robin for a new client, then the instance named in HAProxy's
    /// `SERVERID` cookie.
    Sticky,
}

/// HAProxy in front of shop instances, with fast health checks; killed
/// when dropped.
#[derive(Debug)]
pub struct Haproxy {
    process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
    backends: usize,
    _dir: TempDir,
}

impl Haproxy {
    /// Starts HAProxy on a free port balancing over `backends`.
    ///
    /// # Panics
    ///
    /// If `haproxy` is not installed (`scripts/services.sh up` installs it)
    /// or the backends are not healthy through it within 20 s.
    pub async fn start(backends: &[SocketAddr], balance: Balance) -> Haproxy {
        let port = free_port();
        let dir = TempDir::new("test-support-haproxy");
        let sticky = balance == Balance::Sticky;
        // A request sent over a kept-alive connection to an instance that
        // has just died gets no answer; HAProxy then closes the client's
        // connection too, unless it may retry. `GET`s (and `HEAD`s) are
        // retried on another instance, as a browser would retry them;
        // anything else is never sent twice.
        let mut cfg = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 180s\n  timeout server 180s\n  \
             timeout queue 10s\n  timeout check 2s\n  retries 3\n  option redispatch\n  \
             retry-on conn-failure empty-response\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend shops\n\
             backend shops\n  balance roundrobin\n  option httpchk GET /healthz\n  \
             http-request disable-l7-retry if !METH_GET\n{}",
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
        let args = vec![
            "-db".to_owned(),
            "-f".to_owned(),
            path.to_string_lossy().into_owned(),
        ];
        let mut process = Process::new("haproxy", args, dir.join("haproxy.log"));
        process.start();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let proxy = Haproxy {
            process,
            addr,
            backends: backends.len(),
            _dir: dir,
        };
        proxy.wait_healthy(proxy.backends).await;
        proxy
    }

    /// Kills it at once (SIGKILL), as a load balancer node is lost:
    /// connections through it break and new ones are refused.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same address with the same backends, as a
    /// replaced load balancer node, and waits until it is healthy.
    ///
    /// # Panics
    ///
    /// If the backends are not healthy through it within 20 s.
    pub async fn restart(&mut self) {
        self.process.start();
        self.wait_healthy(self.backends).await;
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
                "haproxy on {} never became healthy: {}",
                self.addr,
                self.process.log_tail(2000)
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
