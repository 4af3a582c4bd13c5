//! The shop, built inside the tests package so its end-to-end tests can
//! start it as a real process (`CARGO_BIN_EXE_e2e-shop`).

#[tokio::main]
async fn main() {
    shop::main_from_env().await;
}
