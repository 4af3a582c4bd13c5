//! Environment lookups for tests. A test that needs a server never skips:
//! it fails and says how to start the servers ([`START_HINT`]).

use std::time::Duration;

use crate::services::default_env;

/// What every test that misses a server or a tool says.
pub const START_HINT: &str = "start the test servers (and install the tools) with \
     `eval \"$(scripts/services.sh up)\"`";

/// The value of the environment variable `var`, or `default` when it is
/// unset or empty.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The value of the environment variable `var`.
///
/// # Panics
///
/// When it is unset or empty, naming `var` and [`START_HINT`].
pub fn require_env(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{var} is not set; {START_HINT}"))
}

/// A shared server's setting: the environment variable `var` (as printed
/// by `scripts/services.sh env`), or else what that script would print
/// ([`default_env`]).
///
/// # Panics
///
/// When `var` is unset and has no fixed default (`PG_BIN`, say), naming
/// `var` and [`START_HINT`].
pub fn service_env(var: &str) -> String {
    match default_env(var) {
        Some(default) => env_or(var, &default),
        None => require_env(var),
    }
}

/// Fails the test, naming `var` and how to start the servers, unless the
/// host and port of `url` accept a TCP connection within 3 s.
///
/// # Panics
///
/// If the server cannot be reached.
pub async fn require_server(var: &str, url: &str) {
    let hostport = crate::urls::host_port(url);
    let connect = tokio::net::TcpStream::connect(hostport.to_owned());
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("cannot reach {var}={url}: {e}; {START_HINT}"),
        Err(_) => panic!("cannot reach {var}={url}: no answer within 3 s; {START_HINT}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_fall_back() {
        let var = "TEST_SUPPORT_SURELY_UNSET";
        assert_eq!(env_or(var, "d"), "d");
        let err = std::panic::catch_unwind(|| require_env(var)).unwrap_err();
        let msg = err.downcast_ref::<String>().expect("a message");
        assert!(
            msg.contains(var) && msg.contains("scripts/services.sh up"),
            "{msg}"
        );
    }
}
