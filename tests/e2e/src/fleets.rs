//! The fleets the fault tests start most: shops behind round-robin
//! HAProxy keeping their sessions in the shared Redis.

use test_support::env::require_server;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::redis;

/// `n` shop processes behind round-robin HAProxy, sessions in the shared
/// Redis of `scripts/services.sh` (cookies without `Secure`, as the tests
/// speak plain HTTP), with the settings `more` on top.
///
/// # Panics
///
/// If the shared Redis does not answer (naming the command that starts
/// it), or a shop or HAProxy does not start.
pub async fn on_shared_redis(n: usize, more: &[(&str, &str)]) -> Fleet {
    let redis_url = redis::shared_url();
    require_server("REDIS_URL", &redis_url).await;
    let mut env = vec![
        ("SESSION_STORE", "redis"),
        ("REDIS_URL", redis_url.as_str()),
        ("COOKIE_SECURE", "false"),
    ];
    env.extend_from_slice(more);
    Fleet::start(n, &env, Balance::RoundRobin).await
}
