//! The cart app on actix-web with session-core's `actix` front end and
//! session-stores' Redis store: the same handlers' logic as `ours`.
//!
//! Run with: `cargo run --release --bin actix-ours -- serve --store redis`.

use actix_web::{HttpResponse, web};
use session_core::{Session, SessionLayer};
use session_stores::RedisStore;
use stateful_compare::actix_front::{cart_http, main_with};
use stateful_compare::{AddItem, CART_KEY, Cart, StoreKind, add_to_cart};

/// A read-only handler reads the cart as a shared value: decoded once per
/// change, not once per request.
async fn get_cart(session: Session) -> Result<HttpResponse, session_core::Error> {
    let cart = session.get_shared::<Cart>(CART_KEY).await?;
    Ok(cart_http(cart.as_deref().map_or(&[][..], Vec::as_slice)))
}

/// Read-modify-write in one atomic `update`, as `ours` does.
async fn add_item(
    session: Session,
    item: web::Query<AddItem>,
) -> Result<HttpResponse, session_core::Error> {
    let cart = session
        .update(CART_KEY, |cart: Option<Cart>| add_to_cart(cart, &item.sku))
        .await?;
    Ok(cart_http(&cart))
}

async fn seed(session: Session) -> Result<HttpResponse, session_core::Error> {
    let cart = stateful_compare::seed_cart();
    session.insert(CART_KEY, &cart).await?;
    Ok(cart_http(&cart))
}

#[allow(
    clippy::async_yields_async,
    reason = "the closure returns the server unstarted: main_with runs it"
)]
fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    main_with("actix-ours", |store, listener, sessions| async move {
        if store != StoreKind::Redis {
            eprintln!("the actix-web apps run on redis only");
            std::process::exit(2);
        }
        let url = stateful_compare::redis_url();
        let layer = SessionLayer::new(
            RedisStore::builder()
                .connect(&url)
                .await
                .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}")),
        )
        .with_secure(false);
        stateful_compare::actix_server!(listener, sessions, layer.clone(), get_cart, add_item, seed)
    });
}
