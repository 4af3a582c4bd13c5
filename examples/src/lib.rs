//! Example applications built on the stateful crates.
//!
//! The [`shop`] is the showcase: a small web shop whose cart lives in the
//! session, so it survives requests that land on different instances, and
//! whose durable data (accounts, profiles, orders) lives in a database with
//! read replicas, read-your-writes and a cache in front of the products.
//! Run it with `cargo run -p examples --bin shop`.
#![forbid(unsafe_code)]

pub mod shop;
