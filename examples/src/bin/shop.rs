//! The shop.
//!
//! Run with: `cargo run -p examples --bin shop`, then open
//! <http://127.0.0.1:3000>. Settings come from the environment; see
//! `examples::shop::Config`.

#[tokio::main]
async fn main() {
    examples::shop::main_from_env().await;
}
