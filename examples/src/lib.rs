//! Example applications built on the stateful crates.
//!
//! The [`shop`] is the showcase: a small web shop whose cart lives in the
//! session, so it survives requests that land on different instances.
//! Run it with `cargo run -p examples --bin shop`.
#![forbid(unsafe_code)]

pub mod shop;
