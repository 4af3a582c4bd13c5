//! The cart app on actix-web with actix-session's `RedisSessionStore`: the
//! same handlers' logic as `actix-ours`, written as actix-session
//! documents it.
//!
//! Run with: `cargo run --release --bin actix-theirs -- serve --store redis`.

use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{HttpResponse, web};
use stateful_compare::actix_front::{cart_http, main_with};
use stateful_compare::{AddItem, CART_KEY, Cart, StoreKind, add_to_cart};

async fn get_cart(session: Session) -> actix_web::Result<HttpResponse> {
    Ok(cart_http(
        &session.get::<Cart>(CART_KEY)?.unwrap_or_default(),
    ))
}

/// Read, modify, write back: the session is saved when the response is
/// produced.
async fn add_item(session: Session, item: web::Query<AddItem>) -> actix_web::Result<HttpResponse> {
    let cart = add_to_cart(session.get::<Cart>(CART_KEY)?, &item.sku);
    session.insert(CART_KEY, &cart)?;
    Ok(cart_http(&cart))
}

async fn seed(session: Session) -> actix_web::Result<HttpResponse> {
    let cart = stateful_compare::seed_cart();
    session.insert(CART_KEY, &cart)?;
    Ok(cart_http(&cart))
}

#[allow(
    clippy::async_yields_async,
    reason = "the closure returns the server unstarted: main_with runs it"
)]
fn main() {
    main_with("actix-theirs", |store, listener, sessions| async move {
        if store != StoreKind::Redis {
            eprintln!("the actix-web apps run on redis only");
            std::process::exit(2);
        }
        let url = stateful_compare::redis_url();
        let redis = RedisSessionStore::new(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"));
        let key = Key::generate();
        stateful_compare::actix_server!(
            listener,
            sessions,
            SessionMiddleware::builder(redis.clone(), key.clone())
                .cookie_secure(false)
                .build(),
            get_cart,
            add_item,
            seed
        )
    });
}
