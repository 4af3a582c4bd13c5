//! Checkout and the order pages.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use db_router::DbHandle;
use maud::html;
use session_core::Session;

use super::error::PageResult;
use super::layout::{TokenForm, chrome, page, price};
use crate::actions;
use crate::db::Repo;
use crate::security;
use crate::state::AppState;

/// `POST /checkout`: the order is written, then its confirmation page.
pub(super) async fn checkout<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    Form(form): Form<TokenForm>,
) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    let order = actions::checkout(&shop, &db, &session).await?;
    Ok(Redirect::to(&format!("/orders/{}", order.id)))
}

/// `GET /orders/{id}`: the order, read back with the causal token of the
/// checkout.
pub(super) async fn order<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Path(id): Path<i64>,
) -> PageResult<Html<String>> {
    let user = actions::require_user(&session).await?;
    let order = actions::order(&db, &user, id).await?;
    let chrome = chrome(&session).await?;
    Ok(page(
        &format!("Order #{}", order.id),
        &chrome,
        html! {
            p class="notice" { "Thank you! Your order " strong id="order-id" { (order.id) } " is placed." }
            table id="order" {
                tr { th { "Product" } th { "Qty" } th { "Price" } }
                @for line in &order.lines {
                    tr data-sku=(line.sku) { td { (line.name) } td class="qty" { (line.qty) } td { (price(line.price_cents)) } }
                }
            }
            p { "Total: " strong id="total" { (price(order.total_cents)) } }
            p { "Ships to: " span id="ship-to" { (order.ship_to) } }
        },
    ))
}
