//! The migrations: the schema of each database (`migrations/<backend>/`),
//! then the seed products. [`Repo::migrate`](super::Repo::migrate) applies
//! them.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use crate::catalog::seed_sql;

/// The migrations: `schema`, then the seed products.
pub(super) fn migrator(schema: &'static str) -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "schema".into(),
            MigrationType::Simple,
            SqlStr::from_static(schema),
            false,
        ),
        Migration::new(
            2,
            "seed products".into(),
            MigrationType::Simple,
            AssertSqlSafe(seed_sql()).into_sql_str(),
            false,
        ),
    ])
}
