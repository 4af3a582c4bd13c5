//! Memcached: the shared nodes' settings ([`shared_urls`]) and
//! [`Memcached`], a private node that a test may kill and restart.

use std::time::Duration;

use crate::env::service_env;
use crate::ports::free_port;
use crate::process::Process;
use crate::tempdir::TempDir;
use crate::wait::wait_for_port;

/// The shared nodes: `MEMCACHED_URLS`, `host:port,host:port`.
pub fn shared_urls() -> String {
    service_env("MEMCACHED_URLS")
}

/// The shared nodes, one `host:port` each.
pub fn shared_nodes() -> Vec<String> {
    shared_urls()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A private `memcached` on a free port, without UDP, 64 MB; killed when
/// dropped. It keeps nothing across a restart, as Memcached never does.
#[derive(Debug)]
pub struct Memcached {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
    _dir: TempDir,
}

impl Memcached {
    /// Starts it on a free port and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// If `memcached` is not installed or does not start within 10 s.
    pub async fn start() -> Memcached {
        let port = free_port();
        let dir = TempDir::new("test-support-memcached");
        let mut args: Vec<String> = ["-l", "127.0.0.1", "-U", "0", "-m", "64", "-t", "1", "-p"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push(port.to_string());
        // memcached refuses to run as root unless told which user to be.
        if is_root() {
            args.extend(["-u".to_owned(), "root".to_owned()]);
        }
        let process = Process::new("memcached", args, dir.join("memcached.log"));
        let mut server = Memcached {
            port,
            process,
            _dir: dir,
        };
        server.restart().await;
        server
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it at once (SIGKILL): its items are gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again, empty, on the same port.
    ///
    /// # Panics
    ///
    /// If it does not accept connections within 10 s.
    pub async fn restart(&mut self) {
        self.process.start();
        wait_for_port("memcached", self.port, Duration::from_secs(10)).await;
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}
