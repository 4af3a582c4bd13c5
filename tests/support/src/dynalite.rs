//! The DynamoDB emulator (dynalite, installed by `scripts/services.sh`
//! into its npm folder): the shared one's settings ([`shared_endpoint`])
//! and [`Dynalite`], a private one that a test may kill and restart.

use std::time::Duration;

use crate::env::{START_HINT, service_env};
use crate::ports::free_port;
use crate::process::Process;
use crate::services::services_dir;
use crate::tempdir::TempDir;
use crate::wait::wait_for_port;

/// The shared emulator: `DYNAMODB_ENDPOINT`.
pub fn shared_endpoint() -> String {
    service_env("DYNAMODB_ENDPOINT")
}

/// The shop's settings for sessions in `table` of the shared emulator:
/// `SESSION_STORE=dynamodb`, `DYNAMODB_ENDPOINT`, `DYNAMODB_TABLE` and the
/// `AWS_*` credentials and region it accepts.
pub fn shared_shop_env(table: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SESSION_STORE", "dynamodb".to_owned()),
        ("DYNAMODB_ENDPOINT", shared_endpoint()),
        ("DYNAMODB_TABLE", table.to_owned()),
        ("AWS_ACCESS_KEY_ID", service_env("AWS_ACCESS_KEY_ID")),
        (
            "AWS_SECRET_ACCESS_KEY",
            service_env("AWS_SECRET_ACCESS_KEY"),
        ),
        ("AWS_REGION", service_env("AWS_REGION")),
    ]
}

/// A private DynamoDB emulator (dynalite), keeping its tables in a LevelDB
/// directory so that they outlive a restart; killed when dropped.
#[derive(Debug)]
pub struct Dynalite {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
    _dir: TempDir,
}

impl Dynalite {
    /// Starts it on a free port and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// If dynalite is not installed in the services' npm folder or does
    /// not start within 20 s.
    pub async fn start() -> Dynalite {
        let cli = services_dir().join("npm/node_modules/dynalite/cli.js");
        assert!(
            cli.is_file(),
            "dynalite is not installed at {}; {START_HINT}",
            cli.display()
        );
        let port = free_port();
        let dir = TempDir::new("test-support-dynalite");
        let args = vec![
            cli.to_string_lossy().into_owned(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--path".into(),
            dir.join("db").to_string_lossy().into_owned(),
            "--createTableMs".into(),
            "0".into(),
            "--deleteTableMs".into(),
            "0".into(),
            "--updateTableMs".into(),
            "0".into(),
        ];
        let process = Process::new("node", args, dir.join("dynalite.log"));
        let mut server = Dynalite {
            port,
            process,
            _dir: dir,
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
        self.process.kill();
    }

    /// Starts it again on the same port and data directory.
    ///
    /// # Panics
    ///
    /// If it does not accept connections within 20 s.
    pub async fn restart(&mut self) {
        self.process.start();
        wait_for_port("dynalite", self.port, Duration::from_secs(20)).await;
    }
}
