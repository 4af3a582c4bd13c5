//! The one test harness of the workspace. Every crate's tests use it as a
//! dev-dependency (`test-support.workspace = true`); it depends on none of
//! the workspace's crates.
//!
//! | module | job |
//! | --- | --- |
//! | [`services`] | the shared servers' settings, read from `tests/support/services.env` (which `scripts/services.sh` sources too) |
//! | [`burst`] | many tasks released at once |
//! | [`corpus`] | changing the entries of a fuzz corpus in property tests |
//! | [`env`](mod@env) | environment lookups that fail loudly and name the command to run |
//! | [`redis`] | private `redis-server`s (single, TLS, replica, Cluster) and the shared Redis's settings |
//! | [`redis_pair`] | a private Redis primary with a replica, to promote and demote |
//! | [`sentinel`] | a private primary, replica and three Redis Sentinels |
//! | [`endpoint`] | a relay playing a DNS name that fails over (ElastiCache's primary endpoint) |
//! | [`postgres`] | a private PostgreSQL primary and streaming replica ([`postgres::PgPair`]) and the shared pair's settings |
//! | [`mariadb`] | a private MariaDB primary and GTID replica ([`mariadb::MariaDbPair`]) and the shared server's settings |
//! | [`dynalite`] | a private DynamoDB emulator and the shared one's settings |
//! | [`memcached`] | a private `memcached` and the shared nodes' settings |
//! | [`haproxy`] | HAProxy in front of local servers |
//! | [`metrics`] | reading a Prometheus scrape, and the metric table of `docs/observability.md` |
//! | [`shop`] | the shop binary (built once per test process) and shop processes |
//! | [`fleet`] | several shops behind one HAProxy |
//! | [`process`] | a child process that can be killed, paused and restarted |
//! | [`tempdir`] | [`TempDir`], removed when dropped |
//! | [`ports`] | free loopback ports |
//! | [`wait`] | waiting for a condition with a time limit |
//! | [`names`] | unique names for tables, databases and keys |
//! | [`urls`] | small edits of server URLs |
//! | [`paths`] | the workspace and artifact directories |
//! | [`output`] | messages past the test harness's capture |
//!
//! A private server is started on a free port, belongs to one test, and is
//! killed (with its files removed) when dropped, also when the test fails.
//! A missing program or server fails the test with a message naming
//! `scripts/services.sh up`, which installs and starts everything.
#![forbid(unsafe_code)]

pub mod burst;
pub mod corpus;
pub mod dynalite;
pub mod endpoint;
pub mod env;
pub mod fleet;
pub mod haproxy;
pub mod mariadb;
pub mod memcached;
pub mod metrics;
pub mod names;
pub mod output;
pub mod paths;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod redis_pair;
pub mod sentinel;
pub mod services;
pub mod shop;
pub mod tempdir;
pub mod urls;
pub mod wait;

pub use env::{START_HINT, env_or, require_env, service_env};
pub use names::unique;
pub use output::say;
pub use ports::free_port;
pub use tempdir::TempDir;
pub use wait::wait_until;
