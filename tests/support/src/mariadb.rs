//! MariaDB for tests: the shared server's settings, and a private primary
//! with a GTID replica ([`MariaDbPair`]) that a test may delay, stop and
//! kill without touching the shared server.

use std::process::Stdio;
use std::time::Duration;

use crate::env::{START_HINT, service_env};
use crate::ports::free_port_pair;
use crate::process::Process;
use crate::tempdir::TempDir;
use crate::wait::wait_until;

/// The shared MariaDB (or MySQL) database: `MYSQL_URL`, by default the
/// machine's server on port 3306.
pub fn url() -> String {
    service_env("MYSQL_URL")
}

/// The database both servers of a [`MariaDbPair`] hold.
pub const DATABASE: &str = "app";

/// One private `mariadbd` on a free port, with its data directory in a
/// [`TempDir`]; killed when dropped.
#[derive(Debug)]
pub struct MariaDbServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
    _dir: TempDir,
}

impl MariaDbServer {
    /// Creates a data directory (`mariadb-install-db`), starts `mariadbd`
    /// with server ID `id` (and a binary log when `primary`), and waits
    /// until it answers.
    ///
    /// # Panics
    ///
    /// If the programs are missing or the server does not answer in 60 s.
    async fn start(port: u16, id: u32, primary: bool) -> MariaDbServer {
        let dir = TempDir::new("test-support-mariadb");
        let data = dir.join("data");
        // Temporary tables of its own: servers bootstrapping at once in a
        // shared /tmp trip over each other's files.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
        let out = tokio::process::Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg(format!("--tmpdir={}", tmp.display()))
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run mariadb-install-db ({e}); {START_HINT}"));
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut args = vec![
            "--no-defaults".to_owned(),
            "--user=root".to_owned(),
            format!("--datadir={}", data.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--socket={}", dir.join("sock").display()),
            format!("--pid-file={}", dir.join("pid").display()),
            format!("--tmpdir={}", tmp.display()),
            format!("--server-id={id}"),
            "--skip-name-resolve".to_owned(),
        ];
        if primary {
            args.push("--log-bin=bin".to_owned());
            args.push("--binlog-format=ROW".to_owned());
        } else {
            args.push("--read-only=1".to_owned());
        }
        let mut process = Process::new("mariadbd", args, dir.join("mariadbd.log"));
        process.start();
        let server = MariaDbServer {
            port,
            process,
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    /// Waits until it answers `SELECT 1`.
    ///
    /// # Panics
    ///
    /// After 60 s.
    async fn wait_ready(&self) {
        wait_until(
            &format!("mariadbd on :{}", self.port),
            Duration::from_secs(60),
            || async move { self.sql("SELECT 1").await.is_ok() },
        )
        .await;
    }

    /// `mysql://root@127.0.0.1:<port>/app`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// Runs `statements` with the `mariadb` client as root; its output
    /// (tab-separated, no column names), or the error it printed.
    pub async fn sql(&self, statements: &str) -> Result<String, String> {
        self.client(&["-N", "-B", "-e", statements]).await
    }

    /// One field of the first row `statement` returns (a `SHOW` such as
    /// `SHOW SLAVE STATUS`, say), by column name; `None` if there is no
    /// row, no such column, the value is `NULL` or the statement fails.
    pub async fn field(&self, statement: &str, column: &str) -> Option<String> {
        let rows = self
            .client(&["-B", "-e", &format!("{statement}\\G")])
            .await
            .ok()?;
        rows.lines().find_map(|line| {
            let (name, value) = line.trim().split_once(": ")?;
            (name == column && value != "NULL").then(|| value.to_owned())
        })
    }

    async fn client(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new("mariadb")
            .args([
                "--no-defaults",
                "--protocol=TCP",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
            ])
            .arg(format!("-P{}", self.port))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run mariadb ({e}); {START_HINT}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Like [`sql`](Self::sql), failing the test on an error.
    ///
    /// # Panics
    ///
    /// If the statements fail.
    pub async fn must(&self, statements: &str) -> String {
        self.sql(statements)
            .await
            .unwrap_or_else(|e| panic!("on :{}: {statements}: {e}", self.port))
    }

    /// Kills it (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again (after [`kill`](Self::kill)) on the same port and
    /// data directory, and waits until it answers. A replica resumes
    /// replicating from where it stopped.
    ///
    /// # Panics
    ///
    /// If it does not answer within 30 s.
    pub async fn restart(&mut self) {
        self.process.start();
        self.wait_ready().await;
    }
}

/// A private MariaDB primary (binary log, server ID 1) and a replica of
/// it (server ID 2, `read_only`, which root, as the tests connect, may bypass) following it by GTID
/// (`MASTER_USE_GTID=slave_pos`), each holding the database [`DATABASE`].
#[derive(Debug)]
pub struct MariaDbPair {
    /// The primary.
    pub primary: MariaDbServer,
    /// The replica.
    pub replica: MariaDbServer,
}

impl MariaDbPair {
    /// Starts both, creates [`DATABASE`] on the primary and waits until
    /// the replica has it.
    ///
    /// # Panics
    ///
    /// If `mariadbd` or `mariadb-install-db` is missing, or replication
    /// does not start within 30 s.
    pub async fn start() -> MariaDbPair {
        let (p, r) = free_port_pair();
        let primary = MariaDbServer::start(p, 1, true).await;
        let replica = MariaDbServer::start(r, 2, false).await;
        primary
            .must(&format!(
                "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; \
                 GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'; \
                 CREATE DATABASE {DATABASE};"
            ))
            .await;
        replica
            .must(&format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={p}, \
                 MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; \
                 START SLAVE;"
            ))
            .await;
        let pair = MariaDbPair { primary, replica };
        pair.wait_caught_up(Duration::from_secs(30)).await;
        pair
    }

    /// The primary's GTID position (`@@gtid_binlog_pos`), e.g. `0-1-5`.
    pub async fn primary_gtid(&self) -> String {
        self.primary.must("SELECT @@gtid_binlog_pos").await
    }

    /// The replica's applied GTID position (`@@gtid_slave_pos`).
    pub async fn replica_gtid(&self) -> String {
        self.replica.must("SELECT @@gtid_slave_pos").await
    }

    /// Waits until the replica has applied everything the primary wrote.
    ///
    /// # Panics
    ///
    /// After `limit`.
    pub async fn wait_caught_up(&self, limit: Duration) {
        let want = self.primary_gtid().await;
        let (want, replica) = (&want, &self.replica);
        wait_until(
            &format!("the MariaDB replica at GTID {want}"),
            limit,
            || async move {
                replica.sql("SELECT @@gtid_slave_pos").await.ok().as_ref() == Some(want)
            },
        )
        .await;
    }

    /// Makes the replica read the primary's binary log from `port` (a
    /// relay to the primary, say) instead of from the primary directly,
    /// and waits until it has caught up through it.
    ///
    /// # Panics
    ///
    /// If it does not within 30 s.
    pub async fn replicate_through(&self, port: u16) {
        self.replica
            .must(&format!(
                "STOP SLAVE; CHANGE MASTER TO MASTER_PORT={port}; START SLAVE;"
            ))
            .await;
        self.wait_caught_up(Duration::from_secs(30)).await;
    }

    /// Turns the replica into a primary that takes writes, as a failover
    /// does once the old primary is gone: it stops replicating, forgets
    /// its primary and leaves read-only mode.
    pub async fn promote_replica(&self) {
        self.replica
            .must("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;")
            .await;
    }

    /// Turns on semi-synchronous replication, waiting after the binary
    /// log is synced (`AFTER_SYNC`): from now on the primary acknowledges
    /// a commit only once the replica has received it. Waits until the
    /// primary counts the replica as a semi-synchronous client.
    ///
    /// # Panics
    ///
    /// If it does not within 30 s.
    pub async fn make_semi_synchronous(&self) {
        self.primary
            .must(
                "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'; \
                 SET GLOBAL rpl_semi_sync_master_timeout = 60000; \
                 SET GLOBAL rpl_semi_sync_master_enabled = 1;",
            )
            .await;
        self.replica
            .must(
                "SET GLOBAL rpl_semi_sync_slave_enabled = 1; \
                 STOP SLAVE IO_THREAD; START SLAVE IO_THREAD;",
            )
            .await;
        let primary = &self.primary;
        wait_until(
            "the replica to be a semi-synchronous client",
            Duration::from_secs(30),
            || async move {
                primary
                    .sql(
                        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                          WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'",
                    )
                    .await
                    .ok()
                    .as_deref()
                    == Some("1")
            },
        )
        .await;
    }

    /// Makes the replica apply each transaction `seconds` after the
    /// primary committed it (`MASTER_DELAY`; 0 for none), and waits until
    /// replication runs again: right after `START SLAVE` the replica
    /// reports no `Seconds_Behind_Master` at all, which a router rightly
    /// takes for stopped replication.
    ///
    /// # Panics
    ///
    /// If replication does not run again within 30 s.
    pub async fn set_delay(&self, seconds: u32) {
        self.replica
            .must(&format!(
                "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={seconds}; START SLAVE;"
            ))
            .await;
        let this = self;
        wait_until(
            "the MariaDB replica to replicate again",
            Duration::from_secs(30),
            || async move { this.seconds_behind().await.is_some() },
        )
        .await;
    }

    /// The replica's `Seconds_Behind_Master`: `None` while its
    /// replication threads are stopped, starting or not connected.
    pub async fn seconds_behind(&self) -> Option<u64> {
        self.replica
            .field("SHOW SLAVE STATUS", "Seconds_Behind_Master")
            .await?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_replica_follows_by_gtid_and_can_be_delayed() {
        let pair = MariaDbPair::start().await;
        pair.primary
            .must(&format!(
                "CREATE TABLE {DATABASE}.t (id INT PRIMARY KEY); INSERT INTO {DATABASE}.t VALUES (1);"
            ))
            .await;
        pair.wait_caught_up(Duration::from_secs(30)).await;
        assert_eq!(
            pair.replica
                .must(&format!("SELECT id FROM {DATABASE}.t"))
                .await,
            "1"
        );

        pair.set_delay(3).await;
        assert_eq!(pair.seconds_behind().await, Some(0));
        let written = std::time::Instant::now();
        pair.primary
            .must(&format!("INSERT INTO {DATABASE}.t VALUES (2)"))
            .await;
        assert_ne!(pair.replica_gtid().await, pair.primary_gtid().await);
        pair.wait_caught_up(Duration::from_secs(30)).await;
        // The delay counts from the event's timestamp, which has whole
        // seconds, so the replica may apply up to a second early.
        assert!(
            written.elapsed() >= Duration::from_secs(2),
            "the delay was not applied: caught up after {:?}",
            written.elapsed()
        );
    }
}
