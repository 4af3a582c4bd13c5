//! Which database a URL names.

use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// `sqlite:` URLs (and the default file).
    Sqlite,
    /// `postgres://` and `postgresql://` URLs.
    Postgres,
    /// `mysql://` URLs (MariaDB 10.5 or newer).
    MySql,
}

impl Backend {
    /// The backend of `url`, if its scheme is one of the shop's and the
    /// rest of it parses.
    ///
    /// # Errors
    ///
    /// What is wrong with the URL.
    pub fn of_url(url: &str) -> Result<Self, String> {
        let backend = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map(|_| Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url).map(|_| Backend::Postgres)
        } else if url.starts_with("mysql://") {
            MySqlConnectOptions::from_str(url).map(|_| Backend::MySql)
        } else {
            return Err("expected a sqlite:, postgres:// or mysql:// URL".to_owned());
        };
        backend.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_by_scheme() {
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mongodb://h").is_err());
    }
}
