//! PostgreSQL for tests: the shared primary and replica's settings
//! ([`primary_url`], [`replica_url`]) and [`PgPair`], a private primary
//! with its streaming replica that a test may stop and start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{START_HINT, service_env};
use crate::ports::free_port_pair;
use crate::tempdir::TempDir;
use crate::wait::{wait_for_port, wait_until};

/// The shared primary: `PG_PRIMARY_URL`.
pub fn primary_url() -> String {
    service_env("PG_PRIMARY_URL")
}

/// The shared streaming replica: `PG_REPLICA_URL`.
pub fn replica_url() -> String {
    service_env("PG_REPLICA_URL")
}

/// A pool of at most `max_connections` to the shared server at `url`,
/// named `what` in the failure message.
///
/// # Panics
///
/// If it cannot connect within 10 s, naming [`START_HINT`].
pub async fn connect_shared(what: &str, url: &str, max_connections: u32) -> sqlx::PgPool {
    let connecting = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(pool)) => pool,
        Ok(Err(e)) => panic!("cannot connect to {what} at {url}: {e}; {START_HINT}"),
        Err(_) => panic!("connecting to {what} at {url} timed out; {START_HINT}"),
    }
}

/// Fails the test unless the server behind `replica` is a standby (in
/// recovery), naming `what` and [`START_HINT`].
///
/// # Panics
///
/// If it is not, or the query fails.
pub async fn require_standby(replica: &sqlx::PgPool, what: &str) {
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(replica)
        .await
        .unwrap_or_else(|e| panic!("cannot ask {what} whether it is a standby: {e}"));
    assert!(in_recovery, "{what} is not a standby; {START_HINT}");
}

/// Sets `recovery_min_apply_delay` of the replica behind `replica` to
/// `delay` (as PostgreSQL shows it: `"500ms"`, `"0"`) and waits until the
/// server uses it.
///
/// # Panics
///
/// If a query fails or the setting is not in force within 5 s.
pub async fn set_apply_delay(replica: &sqlx::PgPool, delay: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'"
    )))
    .execute(replica)
    .await
    .expect("set recovery_min_apply_delay");
    sqlx::query("SELECT pg_reload_conf()")
        .execute(replica)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now: String = sqlx::query_scalar("SHOW recovery_min_apply_delay")
            .fetch_one(replica)
            .await
            .unwrap();
        if now == delay {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "apply delay stays at {now}, wanted {delay}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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
        let dir = TempDir::new("test-support-pg");
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
        let (primary_port, replica_port) = free_port_pair();
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
        wait_for_port("the primary", self.primary_port, Duration::from_secs(20)).await;
    }

    /// Stops the primary (`pg_ctl stop -m fast`).
    pub fn stop_primary(&self) {
        self.pg_ctl("primary", &["-m", "fast", "stop"]);
    }

    /// Starts the replica.
    pub async fn start_replica(&self) {
        self.pg_ctl("replica", &["start"]);
        wait_for_port("the replica", self.replica_port, Duration::from_secs(20)).await;
    }

    /// Stops the replica (`pg_ctl stop -m fast`).
    pub fn stop_replica(&self) {
        self.pg_ctl("replica", &["-m", "fast", "stop"]);
    }

    /// Stops the primary at once (`pg_ctl stop -m immediate`): no
    /// checkpoint, clients cut off, as when its host is lost.
    pub fn crash_primary(&self) {
        self.pg_ctl("primary", &["-m", "immediate", "stop"]);
    }

    /// Promotes the replica to a primary that takes writes (`pg_ctl
    /// promote`, waiting until it has), as RDS does on a Multi-AZ failover.
    pub fn promote_replica(&self) {
        self.pg_ctl("replica", &["promote"]);
    }

    /// Makes the replica stream from `port` (a relay to the primary, say)
    /// instead of from the primary directly, and waits until it streams.
    ///
    /// # Panics
    ///
    /// If it does not stream within 30 s.
    pub async fn replicate_through(&self, port: u16) {
        let replica = self.connect(self.replica_port, "postgres").await;
        let conninfo = format!("host=127.0.0.1 port={port} user=postgres");
        for sql in [
            format!("ALTER SYSTEM SET primary_conninfo = '{conninfo}'"),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&replica)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        replica.close().await;
        let replica = self.replica_port;
        wait_until(
            &format!("the replica to stream through :{port}"),
            Duration::from_secs(30),
            || async move {
                let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(2))
                    .connect(&format!("postgres://postgres@127.0.0.1:{replica}/postgres"))
                    .await
                else {
                    return false;
                };
                let through: Result<Option<i32>, _> = sqlx::query_scalar(
                    "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                )
                .fetch_optional(&pool)
                .await;
                pool.close().await;
                matches!(through, Ok(Some(p)) if p == i32::from(port))
            },
        )
        .await;
    }

    /// Makes the replica a synchronous standby, as RDS Multi-AZ's: from
    /// now on the primary acknowledges a commit only once the replica has
    /// it on disk (`synchronous_standby_names`), and waits until the
    /// replica is reported as `sync`.
    ///
    /// # Panics
    ///
    /// If the replica is not synchronous within 30 s.
    pub async fn make_synchronous(&self) {
        let admin = self.connect(self.primary_port, "postgres").await;
        for sql in [
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "SELECT pg_reload_conf()",
        ] {
            sqlx::query(sql)
                .execute(&admin)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let admin = &admin;
        wait_until(
            "the replica to be a synchronous standby",
            Duration::from_secs(30),
            || async move {
                sqlx::query_scalar::<_, String>("SELECT sync_state FROM pg_stat_replication")
                    .fetch_optional(admin)
                    .await
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some("sync")
            },
        )
        .await;
        admin.close().await;
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
        wait_until(
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
