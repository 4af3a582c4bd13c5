//! Waiting for a condition, with a time limit that fails the test.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it is true.
///
/// # Panics
///
/// After `limit`, naming `what`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether something accepts TCP connections on loopback `port`.
pub async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// Waits until loopback `port` accepts connections.
///
/// # Panics
///
/// After `limit`, naming `what`.
pub async fn wait_for_port(what: &str, port: u16, limit: Duration) {
    wait_until(&format!("{what} on :{port}"), limit, || port_open(port)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_then_gives_up() {
        let mut n = 0;
        wait_until("three polls", Duration::from_secs(5), || {
            n += 1;
            std::future::ready(n >= 3)
        })
        .await;
        let never = tokio::spawn(wait_until("never", Duration::from_millis(100), || {
            std::future::ready(false)
        }));
        assert!(never.await.unwrap_err().is_panic());
    }
}
