//! Server-rendered pages.

use axum::extract::State;
use axum::response::Html;
use maud::{DOCTYPE, Markup, html};
use session_core::Session;

use super::{AppError, AppState, load_cart};

fn price(cents: u32) -> String {
    format!("{}.{:02} €", cents / 100, cents % 100)
}

fn page(title: &str, cart_count: u32, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · stateful shop" }
                style { (STYLE) }
            }
            body {
                header {
                    a href="/" { "stateful shop" }
                    a href="/cart" id="cart-link" { "Cart (" (cart_count) ")" }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:56rem;margin:0 auto;padding:1rem}\
header{display:flex;justify-content:space-between;border-bottom:1px solid #ccc;padding-bottom:.5rem}\
table{border-collapse:collapse;width:100%}td,th{padding:.3rem;border-bottom:1px solid #eee;text-align:left}\
form{display:inline}";

/// `GET /`: the product list.
pub(super) async fn index(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, AppError> {
    let count = load_cart(&session).await?.count();
    Ok(page(
        "Products",
        count,
        html! {
            table {
                tr { th { "Product" } th { "Price" } th {} }
                @for p in state.products.iter().take(40) {
                    tr {
                        td { (p.name) " " small { (p.sku) } }
                        td { (price(p.price_cents)) }
                        td {
                            form method="post" action="/cart/add" {
                                input type="hidden" name="sku" value=(p.sku);
                                button type="submit" data-sku=(p.sku) { "Add to cart" }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /cart`: the cart.
pub(super) async fn cart(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, AppError> {
    let cart = load_cart(&session).await?;
    let total: u32 = cart
        .items
        .iter()
        .filter_map(|l| state.product(&l.sku).map(|p| p.price_cents * l.qty))
        .sum();
    Ok(page(
        "Your cart",
        cart.count(),
        html! {
            @if cart.items.is_empty() {
                p id="empty" { "Your cart is empty." }
            } @else {
                table id="cart" {
                    tr { th { "Product" } th { "Qty" } th {} }
                    @for line in &cart.items {
                        tr {
                            td { (state.product(&line.sku).map_or(line.sku.as_str(), |p| p.name.as_str())) }
                            td class="qty" { (line.qty) }
                            td {
                                form method="post" action="/cart/remove" {
                                    input type="hidden" name="sku" value=(line.sku);
                                    button type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
                p { "Total: " strong id="total" { (price(total)) } }
            }
        },
    ))
}
