//! TLS: telling whether a connection will use it, and making sure the
//! application has chosen how rustls does its cryptography.
//!
//! rustls needs a process-wide crypto provider. Which one is the
//! application's choice, so the store never installs one: it checks that
//! one is installed before it connects over TLS, and otherwise fails with
//! an error that says how to install one.

use redis::ConnectionAddr;
use session_core::{Error, Result};

use super::error::RedisStoreError;

/// Whether `url` asks for TLS (`rediss://`).
pub(super) fn is_tls_url(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
}

/// Whether `client` connects over TLS.
pub(super) fn is_tls_client(client: &redis::Client) -> bool {
    matches!(
        client.get_connection_info().addr(),
        ConnectionAddr::TcpTls { .. }
    )
}

/// Fails unless the process has a default rustls crypto provider.
pub(super) fn require_crypto_provider() -> Result<()> {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        Ok(())
    } else {
        Err(Error::backend(RedisStoreError::NoCryptoProvider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_scheme_detection() {
        assert!(is_tls_url("rediss://h:1"));
        assert!(is_tls_url("REDISS://h:1"));
        assert!(!is_tls_url("redis://h:1"));
        assert!(!is_tls_url("redis"));
    }

    #[test]
    fn tls_client_detection() {
        let tls = redis::Client::open("rediss://h:1").unwrap();
        let plain = redis::Client::open("redis://h:1").unwrap();
        assert!(is_tls_client(&tls));
        assert!(!is_tls_client(&plain));
    }
}
