//! Run with: `cargo run -p shop`, then open <http://127.0.0.1:3000>.
//!
//! The shop on embedded defaults: sessions in this process and an SQLite
//! file `shop.db` in the working directory, created and seeded on first
//! start, no servers needed. Settings come from the environment; see
//! `shop::Config`.

#[tokio::main]
async fn main() {
    shop::main_from_env().await;
}
