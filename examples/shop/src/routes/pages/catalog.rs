//! The product list and the product pages.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;
use session_core::Session;

use super::error::PageResult;
use super::layout::{Chrome, chrome, csrf_field, page, price};
use crate::actions;
use crate::caches::Listing;
use crate::catalog::PAGE_SIZE;
use crate::db::Repo;
use crate::error::AppError;
use crate::state::AppState;

fn add_form(chrome: &Chrome, sku: &str, with_qty: bool) -> Markup {
    html! {
        form method="post" action="/cart/add" {
            (csrf_field(chrome))
            input type="hidden" name="sku" value=(sku);
            @if with_qty {
                label { "Quantity " input type="number" name="qty" id="qty" value="1" min="1" max="99"; }
                " "
            }
            button type="submit" data-sku=(sku) { "Add to cart" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    page: Option<u32>,
}

/// `GET /[?page=N]`: the product list, from the cache (filled from a
/// replica).
pub(super) async fn index<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> PageResult<Html<String>> {
    let n = q.page.unwrap_or(0);
    let products = crate::footer::through_cache(shop.listing.get(&Listing::Page(n)))
        .await
        .map_err(AppError::from)?
        .unwrap_or_default();
    let chrome = chrome(&session).await?;
    Ok(page(
        "Products",
        &chrome,
        html! {
            table id="products" {
                tr { th { "Product" } th { "Price" } th {} }
                @for p in &products {
                    tr {
                        td { a href={ "/products/" (p.sku) } { (p.name) } " " small { (p.sku) } }
                        td { (price(p.price_cents)) }
                        td { (add_form(&chrome, &p.sku, false)) }
                    }
                }
            }
            div class="pages" {
                @if n > 0 { a href={ "/?page=" (n - 1) } rel="prev" { "← Previous" } }
                @if products.len() == PAGE_SIZE as usize { a href={ "/?page=" (n + 1) } rel="next" { "Next →" } }
            }
        },
    ))
}

/// `GET /products/{sku}`: one product, from the cache.
pub(super) async fn product<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Path(sku): Path<String>,
) -> PageResult<Html<String>> {
    let p = actions::product(&shop, &sku).await?;
    let chrome = chrome(&session).await?;
    Ok(page(
        &p.name,
        &chrome,
        html! {
            p class="description" { (p.description) }
            p { "Price: " strong id="price" { (price(p.price_cents)) } " · SKU " (p.sku) }
            (add_form(&chrome, &p.sku, true))
        },
    ))
}
