//! The shop, run as real processes by end-to-end tests.
//!
//! [`binary`] gives the path of the `shop` binary. The first call in a test
//! process runs
//!
//! ```text
//! $CARGO build --workspace --all-features --locked --bin shop --message-format=json-render-diagnostics
//! ```
//!
//! (`$CARGO` is the cargo that runs the tests, else `cargo` from `PATH`)
//! and takes the path from the `executable` field of the binary's
//! `compiler-artifact` message, hard-linked under a name this test process
//! alone uses; later calls reuse it. Cargo does not hold
//! its build lock while tests run, so this works from inside `cargo test`;
//! with the same `--workspace --all-features` as `scripts/test.sh`'s
//! `cargo test`, the build finds everything already compiled and only
//! checks that it is fresh. A package's own binaries would come from
//! `CARGO_BIN_EXE_<name>`, but the shop is another package's binary, and a
//! copy binary in the tests' package would be a second `main` to keep in
//! step.
//!
//! [`Shop`] starts one instance and waits until it listens. The same goes
//! for the other binaries that serve the shop's API with the shop's
//! settings ([`binary_named`], [`Shop::start_binary`]): `actix-cart`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::env::START_HINT;
use crate::paths::workspace_dir;
use crate::ports::free_port;

/// The `shop` binary, built once per test process (see the module docs).
///
/// # Panics
///
/// If cargo cannot be run or the build fails (its diagnostics are in the
/// message).
pub fn binary() -> &'static Path {
    binary_named("shop")
}

/// The binary `name` of the workspace, built once per test process like
/// [`binary`].
///
/// # Panics
///
/// If cargo cannot be run or the build fails.
pub fn binary_named(name: &'static str) -> &'static Path {
    static BINARIES: Mutex<Option<HashMap<&'static str, &'static Path>>> = Mutex::new(None);
    let mut binaries = BINARIES.lock().unwrap_or_else(|e| e.into_inner());
    binaries
        .get_or_insert_with(HashMap::new)
        .entry(name)
        .or_insert_with(|| Box::leak(build(name).into_boxed_path()))
}

fn build(name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(&cargo)
        .args([
            "build",
            "--workspace",
            "--all-features",
            "--locked",
            "--bin",
            name,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} to build {name}: {e}", cargo.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "building {name} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .map(|built| pin(&built, name))
        .unwrap_or_else(|| panic!("cargo built no {name} executable:\n{stdout}"))
}

/// A name for `built` that this test process alone uses: a hard link in
/// `<target>/e2e-bin/<pid>/`. Another checkout sharing the target
/// directory may build its own `name` while this process's tests run;
/// Cargo replaces `built` by unlinking it, so the link keeps this build.
/// Directories of processes that have exited are removed. Falls back to
/// `built` where links cannot be made.
fn pin(built: &Path, name: &str) -> PathBuf {
    let Some(root) = built.parent().and_then(Path::parent) else {
        return built.to_path_buf();
    };
    let dir = root.join("e2e-bin");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let pid = entry.file_name();
            if Path::new("/proc").is_dir() && !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let mine = dir.join(std::process::id().to_string());
    let link = mine.join(name);
    let _ = std::fs::remove_file(&link);
    match std::fs::create_dir_all(&mine).and_then(|()| std::fs::hard_link(built, &link)) {
        Ok(()) => link,
        Err(_) => built.to_path_buf(),
    }
}

/// The shop's settings (its `Config`): a started shop gets only those
/// the test gives it.
pub const SHOP_VARS: &[&str] = &[
    "SHOP_ADDR",
    "ADMIN_ADDR",
    "SHOP_DATA_DIR",
    "SHOP_INSTANCE",
    "SHOP_FOOTER",
    "SESSION_STORE",
    "SESSION_MAX_ATTEMPTS",
    "SESSION_STORE_TIMEOUT_MS",
    "REDIS_URL",
    "REDIS_CLUSTER_URLS",
    "REDIS_NEAR_CACHE",
    "REDIS_SENTINEL_URLS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_WAIT_REPLICAS",
    "REDIS_WAIT_TIMEOUT_MS",
    "DYNAMODB_ENDPOINT",
    "DYNAMODB_TABLE",
    "DYNAMODB_CREATE_TABLE",
    "MEMCACHED_URLS",
    "DATABASE_URL",
    "DATABASE_REPLICA_URLS",
    "CACHE",
    "COOKIE_KEYS",
    "COOKIE_SECURE",
    "SESSION_MIGRATE_FROM",
    "SESSION_MIGRATION_PHASE",
    "OLD_COOKIE_KEYS",
    "OLD_REDIS_URL",
    "OLD_DYNAMODB_TABLE",
    "OLD_DYNAMODB_ENDPOINT",
    "OLD_MEMCACHED_URLS",
];

/// One shop process.
#[derive(Debug)]
pub struct Shop {
    /// The binary: `shop`, or another that serves the shop's API.
    bin: &'static str,
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    env: Vec<(String, String)>,
}

impl Shop {
    /// Starts the shop [`binary`] with `env` (on a free port unless
    /// `SHOP_ADDR` is in `env`) and waits until it listens.
    ///
    /// # Panics
    ///
    /// If it does not start within 20 s.
    pub async fn start(env: &[(&str, &str)]) -> Shop {
        Shop::start_binary("shop", env).await
    }

    /// Starts the workspace's binary `bin` (see [`binary_named`]) like
    /// [`start`](Self::start): it takes the shop's settings and logs
    /// `<bin> listening on` once it listens.
    ///
    /// # Panics
    ///
    /// If it does not start within 20 s.
    pub async fn start_binary(bin: &'static str, env: &[(&str, &str)]) -> Shop {
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
            bin,
            child: None,
            addr,
            env,
        };
        shop.spawn().await;
        shop
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(binary_named(self.bin));
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
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin));
        let ready_line = format!("{} listening on", self.bin);
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read shop output") {
                if line.contains(&ready_line) {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(ready, Ok(true)) {
            let status = child.try_wait().ok().flatten();
            panic!(
                "{} on {} did not start ({}; its error is above); \
                 if it names a server's variable, {START_HINT} (env {:?})",
                self.bin,
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

    /// Starts it again on the same address with its settings changed by
    /// `changes` (each replaces the variable's value, or adds it): one
    /// step of a rolling restart onto a new configuration.
    pub async fn restart_with(&mut self, changes: &[(&str, &str)]) {
        for (var, value) in changes {
            self.env.retain(|(k, _)| k != var);
            self.env.push(((*var).to_owned(), (*value).to_owned()));
        }
        self.restart().await;
    }
}
