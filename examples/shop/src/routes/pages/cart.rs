//! The cart page and its forms.

use axum::Form;
use axum::extract::State;
use axum::response::{Html, Redirect};
use maud::html;
use serde::Deserialize;
use session_core::Session;

use super::error::PageResult;
use super::layout::{chrome, csrf_field, page, price};
use crate::actions;
use crate::db::Repo;
use crate::error::AppError;
use crate::security;
use crate::state::AppState;

/// `GET /cart`.
pub(super) async fn cart<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
) -> PageResult<Html<String>> {
    let cart = actions::load_cart(&session).await?;
    let mut lines = Vec::with_capacity(cart.items.len());
    for line in &cart.items {
        let product = actions::product(&shop, &line.sku).await.ok();
        lines.push((line, product));
    }
    let total: i64 = lines
        .iter()
        .filter_map(|(l, p)| p.as_ref().map(|p| p.price_cents * i64::from(l.qty)))
        .sum();
    let chrome = chrome(&session).await?;
    Ok(page(
        "Your cart",
        &chrome,
        html! {
            @if cart.items.is_empty() {
                p id="empty" { "Your cart is empty." }
            } @else {
                table id="cart" {
                    tr { th { "Product" } th { "Qty" } th { "Price" } th {} }
                    @for (line, product) in &lines {
                        tr data-sku=(line.sku) {
                            td { (product.as_ref().map_or(line.sku.as_str(), |p| p.name.as_str())) }
                            td class="qty" { (line.qty) }
                            td { (product.as_ref().map(|p| price(p.price_cents)).unwrap_or_default()) }
                            td {
                                form method="post" action="/cart/remove" {
                                    (csrf_field(&chrome))
                                    input type="hidden" name="sku" value=(line.sku);
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
                p { "Total: " strong id="total" { (price(total)) } }
                @if chrome.user.is_some() {
                    form method="post" action="/checkout" {
                        (csrf_field(&chrome))
                        button type="submit" id="checkout" { "Place the order" }
                    }
                } @else {
                    p { a href="/login" { "Log in" } " or " a href="/signup" { "sign up" } " to check out; your cart stays." }
                }
            }
        },
    ))
}

/// The add-to-cart form.
#[derive(Debug, Deserialize)]
pub(super) struct AddForm {
    #[serde(default)]
    csrf: String,
    sku: String,
    #[serde(default)]
    qty: Option<String>,
}

/// `POST /cart/add`.
pub(super) async fn add<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Form(form): Form<AddForm>,
) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    let qty = match form.qty.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(q) => q.parse().map_err(|_| AppError::BadQuantity)?,
    };
    actions::add_to_cart(&shop, &session, &form.sku, qty).await?;
    Ok(Redirect::to("/cart"))
}

/// The remove-from-cart form.
#[derive(Debug, Deserialize)]
pub(super) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    sku: String,
}

/// `POST /cart/remove`.
pub(super) async fn remove(session: Session, Form(form): Form<RemoveForm>) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    actions::remove_from_cart(&session, &form.sku).await?;
    Ok(Redirect::to("/cart"))
}
