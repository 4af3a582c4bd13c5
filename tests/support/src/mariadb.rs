//! MariaDB for tests: the shared server's settings. (A private server, for
//! tests that stop one, is yet to come.)

use crate::env::service_env;

/// The shared MariaDB (or MySQL) database: `MYSQL_URL`, by default the
/// machine's server on port 3306.
pub fn url() -> String {
    service_env("MYSQL_URL")
}
