//! Integration tests against real Redis servers (never mocks).
//!
//! Most tests use the server at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`) and fail, loudly, when it is unreachable. Tests
//! that stop Redis start their own `redis-server` on a free port (or their
//! own Sentinel group, to fail it over). Every test
//! uses its own cache name, hence its own keys, so they run in parallel.

mod coalescing;
mod common;
mod features;
mod invalidation;
mod outage;
#[cfg(feature = "metrics")]
mod recorded_metrics;
mod sentinel;
