//! Configuration from the environment.

use std::net::SocketAddr;

/// Which session store the shop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// In this process: one instance only.
    Memory,
    /// Sealed in the cookie itself (needs `COOKIE_KEYS`).
    Cookie,
}

/// The shop's settings, read from environment variables.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `SHOP_ADDR`: where to listen (default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// `SESSION_STORE`: `memory` (default).
    pub session_store: StoreKind,
    /// `COOKIE_SECURE`: whether the session cookie is `Secure` (default
    /// `true`; browsers accept secure cookies on `http://localhost`).
    pub secure_cookie: bool,
    /// `COOKIE_KEYS`: comma-separated base64 AES-256 keys for the cookie
    /// store, current key first. Without it the cookie store makes a random
    /// key at start-up, so its sessions do not survive a restart and are not
    /// shared between instances.
    pub cookie_keys: Option<String>,
}

/// A setting that could not be used, naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            session_store: StoreKind::Memory,
            secure_cookie: true,
            cookie_keys: None,
        }
    }
}

impl Config {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    ///
    /// A variable whose value cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads the settings through `lookup` (for tests).
    ///
    /// # Errors
    ///
    /// A variable whose value cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        let bad = |var: &'static str, value: &str, reason: &str| ConfigError {
            var,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(v) = lookup("SHOP_ADDR") {
            config.addr = v
                .parse()
                .map_err(|e| bad("SHOP_ADDR", &v, &format!("{e} (expected host:port)")))?;
        }
        if let Some(v) = lookup("SESSION_STORE") {
            config.session_store = match v.as_str() {
                "memory" => StoreKind::Memory,
                "cookie" => StoreKind::Cookie,
                _ => return Err(bad("SESSION_STORE", &v, "expected memory or cookie")),
            };
        }
        if let Some(v) = lookup("COOKIE_SECURE") {
            config.secure_cookie = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(bad("COOKIE_SECURE", &v, "expected true or false")),
            };
        }
        if let Some(v) = lookup("COOKIE_KEYS") {
            if let Err(e) = session_stores::CookieStore::from_base64_keys(&v) {
                return Err(bad("COOKIE_KEYS", "<redacted>", &e.to_string()));
            }
            config.cookie_keys = Some(v);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_variable() {
        let err =
            Config::from_lookup(|v| (v == "SESSION_STORE").then(|| "mongo".into())).unwrap_err();
        assert_eq!(err.var, "SESSION_STORE");
        assert!(err.to_string().contains("SESSION_STORE=\"mongo\""), "{err}");
        let err =
            Config::from_lookup(|v| (v == "SHOP_ADDR").then(|| "nowhere".into())).unwrap_err();
        assert_eq!(err.var, "SHOP_ADDR");
        let ok = Config::from_lookup(|_| None).unwrap();
        assert_eq!(ok.addr.port(), 3000);
        assert_eq!(ok.session_store, StoreKind::Memory);
    }
}
