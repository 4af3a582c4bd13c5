//! The database: one repository trait implemented for SQLite, PostgreSQL
//! and MariaDB, migrations, and connecting the router.
//!
//! The schemas differ only in types and live under
//! `examples/shop/migrations/<backend>/`; the seed products are a second,
//! generated migration.

mod backend;
mod connect;
mod migrations;
mod records;
mod repo;

pub use backend::Backend;
pub use connect::{Routers, connect};
pub use records::{Order, OrderLine, OrderSummary, Profile, UserRow};
pub use repo::Repo;
pub(crate) use repo::is_unique_violation;
