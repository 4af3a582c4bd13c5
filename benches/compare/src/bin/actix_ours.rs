//! The cart app on actix-web with session-core's `actix` front end and
//! session-stores' Redis store: the same handlers' logic as `ours`.
//!
//! Run with: `cargo run --release --bin actix-ours -- serve --store redis`.

use actix_web::dev::Service as _;
use actix_web::{App, HttpResponse, HttpServer, web};
use session_core::{Session, SessionLayer};
use session_stores::RedisStore;
use stateful_compare::actix_front::{admin, main_with, select};
use stateful_compare::{AddItem, CART_KEY, Cart, StoreKind, add_to_cart, cart_json};

fn json(cart: &Cart) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(cart_json(cart))
}

async fn get_cart(session: Session) -> Result<HttpResponse, session_core::Error> {
    Ok(json(
        &session.get::<Cart>(CART_KEY).await?.unwrap_or_default(),
    ))
}

/// Read-modify-write in one atomic `update`, as `ours` does.
async fn add_item(
    session: Session,
    item: web::Query<AddItem>,
) -> Result<HttpResponse, session_core::Error> {
    let cart = session
        .update(CART_KEY, |cart: Option<Cart>| add_to_cart(cart, &item.sku))
        .await?;
    Ok(json(&cart))
}

async fn seed(session: Session) -> Result<HttpResponse, session_core::Error> {
    let cart = stateful_compare::seed_cart();
    session.insert(CART_KEY, &cart).await?;
    Ok(json(&cart))
}

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
        let port = listener.local_addr().expect("address").port();
        HttpServer::new(move || {
            let selecting = sessions.clone();
            App::new()
                .service(admin(port, sessions.clone()))
                .route("/cart", web::get().to(get_cart))
                .route("/cart/items", web::post().to(add_item))
                .route("/cart/seed", web::post().to(seed))
                .wrap(layer.clone())
                .wrap_fn(move |mut req, srv| {
                    select(&selecting, &mut req);
                    srv.call(req)
                })
        })
        .workers(2)
        .listen(listener)
        .expect("listen")
        .run()
    });
}
