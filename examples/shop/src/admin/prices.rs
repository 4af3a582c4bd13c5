//! `PUT /products/{sku}/price` on the admin listener: changes a product's
//! price in the database, then invalidates the cached copies (cache-aside:
//! the database first, then the caches, so that no cache keeps the old
//! price once the call answers).
//!
//! A load that read the old price while the change was being made cannot
//! store it afterwards: the cache discards such a fill
//! (`cache_fills_discarded_total`).

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use db_router::DbRouter;
use serde::Deserialize;

use crate::caches::Listing;
use crate::catalog::{MAX_SKU_LEN, PAGE_SIZE, Product};
use crate::db::Repo;
use crate::error::AppError;
use crate::state::AppState;

/// Body of `PUT /products/{sku}/price`.
#[derive(Debug, Deserialize)]
struct NewPrice {
    /// The price in cents, zero or more.
    price_cents: i64,
}

/// What the route needs: the router to write through, the caches to
/// invalidate.
struct Prices<DB: Repo> {
    router: DbRouter<DB>,
    shop: AppState<DB>,
}

impl<DB: Repo> Clone for Prices<DB> {
    fn clone(&self) -> Self {
        Prices {
            router: self.router.clone(),
            shop: self.shop.clone(),
        }
    }
}

/// The route, over `router`'s primary and `shop`'s caches.
pub(crate) fn routes<DB: Repo>(router: DbRouter<DB>, shop: AppState<DB>) -> Router {
    Router::new()
        .route("/products/{sku}/price", put(set_price::<DB>))
        .with_state(Prices { router, shop })
}

/// Sets the price and answers the product as it now is: `404` for an
/// unknown SKU, `422` for a negative price, `503` when the database or
/// the invalidation failed (the price may then be changed already, and
/// the call can be repeated).
async fn set_price<DB: Repo>(
    State(prices): State<Prices<DB>>,
    Path(sku): Path<String>,
    Json(new): Json<NewPrice>,
) -> Result<Json<Product>, AppError> {
    if sku.is_empty() || sku.len() > MAX_SKU_LEN {
        return Err(AppError::UnknownProduct(
            sku.chars().take(MAX_SKU_LEN).collect(),
        ));
    }
    if new.price_cents < 0 {
        return Err(AppError::Invalid(
            "price_cents must be zero or more".to_owned(),
        ));
    }
    let mut tx = prices.router.begin().await?;
    if !DB::set_price(&mut *tx, &sku, new.price_cents).await? {
        return Err(AppError::UnknownProduct(sku));
    }
    let position = DB::position(&mut *tx, &sku).await?;
    let product = DB::product(&mut *tx, &sku)
        .await?
        .ok_or_else(|| AppError::UnknownProduct(sku.clone()))?;
    tx.commit().await?;
    let shop = &prices.shop;
    shop.products.invalidate(&sku).await?;
    let page = u32::try_from(position / i64::from(PAGE_SIZE)).unwrap_or(u32::MAX);
    for listing in [Listing::All, Listing::Page(page)] {
        shop.listing.invalidate(&listing).await?;
    }
    tracing::info!(%sku, price_cents = new.price_cents, "price changed");
    Ok(Json(product))
}
