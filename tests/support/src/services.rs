//! The shared test servers' settings: ports, the ACL user, where the
//! certificates are. They live in one file, `tests/support/services.env`,
//! which `scripts/services.sh` sources and this module includes at build
//! time, so the script and the tests cannot disagree.
//!
//! [`default_env`] gives what `scripts/services.sh env` prints for a
//! variable (where that does not depend on the machine), so a test run
//! without those variables set still finds the servers.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::paths::workspace_dir;

const FILE: &str = include_str!("../services.env");

fn settings() -> &'static [(String, String)] {
    static PARSED: OnceLock<Vec<(String, String)>> = OnceLock::new();
    PARSED.get_or_init(|| parse(FILE))
}

fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("services.env: not NAME=value: {l}"));
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The value of `name` in `services.env`.
///
/// # Panics
///
/// If the file has no such setting.
pub fn setting(name: &str) -> &'static str {
    settings()
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("tests/support/services.env has no {name}"))
}

/// The port `name` (such as `REDIS_PORT`) of `services.env`.
///
/// # Panics
///
/// If the setting is missing or not a port number.
pub fn port(name: &str) -> u16 {
    setting(name)
        .parse()
        .unwrap_or_else(|e| panic!("services.env: {name} is not a port: {e}"))
}

/// The ports of the shared Redis Cluster's nodes.
///
/// # Panics
///
/// If the setting is missing or holds something else than ports.
pub fn cluster_ports() -> Vec<u16> {
    setting("REDIS_CLUSTER_PORTS")
        .split_whitespace()
        .map(|p| {
            p.parse()
                .unwrap_or_else(|e| panic!("services.env: REDIS_CLUSTER_PORTS: {p}: {e}"))
        })
        .collect()
}

/// Where `scripts/services.sh` keeps its state: `$SERVICES_DIR` (printed
/// by `scripts/services.sh env`, so that a second checkout finds the
/// servers and tools of the one that started them), or else `.services`
/// in the workspace.
pub fn services_dir() -> PathBuf {
    std::env::var_os("SERVICES_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join(setting("SERVICES_DIR_NAME")))
}

/// `scripts/services.sh` of the checkout whose servers the tests use: the
/// one holding [`services_dir`] when `$SERVICES_DIR` names it, else this
/// workspace's. Tests that stop and start a shared server (its `pg-replica-stop`
/// and `pg-replica-start`) run it.
///
/// # Panics
///
/// If the script is not there.
pub fn script() -> PathBuf {
    let owner = std::env::var_os("SERVICES_DIR")
        .filter(|v| !v.is_empty())
        .and_then(|dir| PathBuf::from(dir).parent().map(PathBuf::from))
        .unwrap_or_else(workspace_dir);
    let path = owner.join("scripts/services.sh");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The directory of the shared test certificates (`ca.crt`, `server.crt`,
/// `server.key`).
pub fn tls_dir() -> PathBuf {
    services_dir().join(setting("TLS_DIR_NAME"))
}

/// What `scripts/services.sh env` prints for `var`, when that is the same
/// on every machine (`None` for `PG_BIN`, `PG_REPLICA_DATA` and names it
/// does not print). `MYSQL_URL` is the machine's MariaDB port, which the
/// script uses when it answers.
pub fn default_env(var: &str) -> Option<String> {
    let host = "127.0.0.1";
    let db = setting("DATABASE_NAME");
    let value = match var {
        "REDIS_URL" => format!("redis://{host}:{}", port("REDIS_PORT")),
        "REDIS_TLS_URL" => format!("rediss://{host}:{}", port("REDIS_TLS_PORT")),
        "REDIS_TLS_CA" => tls_dir().join("ca.crt").to_string_lossy().into_owned(),
        "REDIS_TLS_ACL_URL" => format!(
            "rediss://{}:{}@{host}:{}",
            setting("REDIS_ACL_USER"),
            setting("REDIS_ACL_PASS"),
            port("REDIS_TLS_PORT")
        ),
        "REDIS_CLUSTER_URLS" => cluster_ports()
            .iter()
            .map(|p| format!("redis://{host}:{p}"))
            .collect::<Vec<_>>()
            .join(","),
        "PG_PRIMARY_URL" => format!(
            "postgres://postgres@{host}:{}/{db}",
            port("PG_PRIMARY_PORT")
        ),
        "PG_REPLICA_URL" => format!(
            "postgres://postgres@{host}:{}/{db}",
            port("PG_REPLICA_PORT")
        ),
        "MYSQL_URL" => format!("mysql://root@{host}:{}/{db}", port("MYSQL_MACHINE_PORT")),
        "DYNAMODB_ENDPOINT" => format!("http://{host}:{}", port("DYNAMODB_PORT")),
        "AWS_ACCESS_KEY_ID" => setting("AWS_TEST_ACCESS_KEY_ID").to_owned(),
        "AWS_SECRET_ACCESS_KEY" => setting("AWS_TEST_SECRET_ACCESS_KEY").to_owned(),
        "AWS_REGION" => setting("AWS_TEST_REGION").to_owned(),
        "REDIS_SENTINEL_URLS" => setting("SENTINEL_PORTS")
            .split_whitespace()
            .map(|p| format!("redis://{host}:{p}"))
            .collect::<Vec<_>>()
            .join(","),
        "REDIS_SENTINEL_MASTER" => setting("SENTINEL_MASTER_NAME").to_owned(),
        "MEMCACHED_URLS" => setting("MEMCACHED_PORTS")
            .split_whitespace()
            .map(|p| format!("{host}:{p}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_parses_and_gives_the_defaults() {
        assert_eq!(port("REDIS_PORT"), 6379);
        assert_eq!(cluster_ports().len(), 6);
        assert_eq!(
            default_env("REDIS_TLS_ACL_URL").as_deref(),
            Some("rediss://stateful:stateful-pass@127.0.0.1:6390")
        );
        assert_eq!(
            default_env("PG_REPLICA_URL").as_deref(),
            Some("postgres://postgres@127.0.0.1:5434/stateful")
        );
        assert_eq!(default_env("PG_BIN"), None);
        assert_eq!(
            default_env("REDIS_SENTINEL_URLS").as_deref(),
            Some("redis://127.0.0.1:26379,redis://127.0.0.1:26380,redis://127.0.0.1:26381")
        );
        assert_eq!(
            default_env("REDIS_SENTINEL_MASTER").as_deref(),
            Some("mymaster")
        );
        assert_eq!(
            default_env("MEMCACHED_URLS").as_deref(),
            Some("127.0.0.1:11211,127.0.0.1:11212")
        );
    }

    #[test]
    fn quotes_and_comments() {
        let parsed = parse("# c\n\nA=1\nB=\"x y\"\n");
        assert_eq!(
            parsed,
            [("A".into(), "1".into()), ("B".into(), "x y".into())]
        );
    }
}
