//! The shop's JSON cart API on actix-web. Run with `cargo run -p actix-cart`
//! and the shop's settings (`SHOP_ADDR`, `SESSION_STORE`, `REDIS_URL`, …).

#[actix_web::main]
async fn main() {
    actix_cart::main_from_env().await;
}
