//! Server-rendered pages. Every form posts the session's CSRF token; the
//! pages use no script and one stylesheet, which the
//! Content-Security-Policy allows and nothing else.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use db_router::DbHandle;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use session_core::Session;

use super::actions::{self, MAX_ADDRESSES, SessionUser};
use super::catalog::{Listing, PAGE_SIZE};
use super::db::Repo;
use super::security::{self, ClientIp};
use super::{AppError, AppState};

/// An error shown as a page.
#[derive(Debug)]
pub(crate) struct PageError(AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl From<session_core::Error> for PageError {
    fn from(e: session_core::Error) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        if matches!(error, AppError::Unauthorized) {
            return Redirect::to("/login").into_response();
        }
        error.log();
        let body = html! {
            p id="error" class="error" { (error.public_message()) }
            p { a href="/" { "Back to the shop" } }
        };
        let mut page = (error.status(), bare_page("Something went wrong", body)).into_response();
        error.headers(&mut page);
        page
    }
}

type PageResult<T = Response> = Result<T, PageError>;

/// What the header of every page needs.
struct Chrome {
    cart_count: u32,
    user: Option<SessionUser>,
    csrf: String,
}

async fn chrome(session: &Session) -> Result<Chrome, AppError> {
    Ok(Chrome {
        cart_count: actions::load_cart(session).await?.count(),
        user: actions::current_user(session).await?,
        csrf: security::csrf_token(session).await?,
    })
}

fn price(cents: i64) -> String {
    format!("{}.{:02} €", cents / 100, cents % 100)
}

fn csrf_field(chrome: &Chrome) -> Markup {
    html! { input type="hidden" name="csrf" value=(chrome.csrf); }
}

fn document(title: &str, header: Markup, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · stateful shop" }
                link rel="stylesheet" href="/static/shop.css";
            }
            body {
                header { (header) }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

fn bare_page(title: &str, body: Markup) -> Html<String> {
    document(
        title,
        html! { a href="/" class="brand" { "stateful shop" } },
        body,
    )
}

fn page(title: &str, chrome: &Chrome, body: Markup) -> Html<String> {
    let header = html! {
        a href="/" class="brand" { "stateful shop" }
        nav {
            a href="/cart" id="cart-link" { "Cart (" (chrome.cart_count) ")" }
            @if let Some(user) = &chrome.user {
                a href="/profile" id="profile-link" { (user.email) }
                form method="post" action="/logout" {
                    (csrf_field(chrome))
                    button type="submit" id="logout" { "Log out" }
                }
            } @else {
                a href="/login" id="login-link" { "Log in" }
                a href="/signup" id="signup-link" { "Sign up" }
            }
        }
    };
    document(title, header, body)
}

const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;max-width:56rem;margin:0 auto;padding:1rem;color:#222}\
header{display:flex;justify-content:space-between;align-items:center;border-bottom:1px solid #ccc;padding-bottom:.5rem}\
header nav{display:flex;gap:1rem;align-items:center}.brand{font-weight:bold}\
table{border-collapse:collapse;width:100%}td,th{padding:.3rem;border-bottom:1px solid #eee;text-align:left}\
form{display:inline}form.stacked{display:flex;flex-direction:column;gap:.5rem;max-width:24rem}\
.error{color:#a00}.notice{color:#060}.pages{display:flex;gap:.5rem;margin-top:1rem}";

/// `GET /static/shop.css`.
pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// Any other path.
pub(crate) async fn not_found() -> PageError {
    PageError(AppError::NotFound)
}

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
pub(crate) struct PageQuery {
    page: Option<u32>,
}

/// `GET /[?page=N]`: the product list, from the cache (filled from a
/// replica).
pub(crate) async fn index<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> PageResult<Html<String>> {
    let n = q.page.unwrap_or(0);
    let products = shop
        .listing
        .get(&Listing::Page(n))
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
pub(crate) async fn product<DB: Repo>(
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

/// `GET /cart`.
pub(crate) async fn cart<DB: Repo>(
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
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    sku: String,
    #[serde(default)]
    qty: Option<String>,
}

/// `POST /cart/add`.
pub(crate) async fn add<DB: Repo>(
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
pub(crate) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    sku: String,
}

/// `POST /cart/remove`.
pub(crate) async fn remove(session: Session, Form(form): Form<RemoveForm>) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    actions::remove_from_cart(&session, &form.sku).await?;
    Ok(Redirect::to("/cart"))
}

fn error_line(error: Option<&AppError>) -> Markup {
    html! { @if let Some(e) = error { p class="error" id="error" { (e.public_message()) } } }
}

fn signup_page(chrome: &Chrome, email: &str, name: &str, error: Option<&AppError>) -> Html<String> {
    page(
        "Sign up",
        chrome,
        html! {
            (error_line(error))
            form method="post" action="/signup" class="stacked" id="signup" {
                (csrf_field(chrome))
                label { "E-mail " input type="email" name="email" id="email" value=(email) required autocomplete="username"; }
                label { "Name " input type="text" name="name" id="name" value=(name) maxlength="100"; }
                label { "Password (8 characters or more) " input type="password" name="password" id="password" required minlength="8" autocomplete="new-password"; }
                button type="submit" { "Create the account" }
            }
            p { "Have an account? " a href="/login" { "Log in" } }
        },
    )
}

fn login_page(chrome: &Chrome, email: &str, error: Option<&AppError>) -> Html<String> {
    page(
        "Log in",
        chrome,
        html! {
            (error_line(error))
            form method="post" action="/login" class="stacked" id="login" {
                (csrf_field(chrome))
                label { "E-mail " input type="email" name="email" id="email" value=(email) required autocomplete="username"; }
                label { "Password " input type="password" name="password" id="password" required autocomplete="current-password"; }
                button type="submit" { "Log in" }
            }
            p { "New here? " a href="/signup" { "Sign up" } }
        },
    )
}

/// `GET /signup`.
pub(crate) async fn signup_form(session: Session) -> PageResult<Html<String>> {
    Ok(signup_page(&chrome(&session).await?, "", "", None))
}

/// `GET /login`.
pub(crate) async fn login_form(session: Session) -> PageResult<Html<String>> {
    Ok(login_page(&chrome(&session).await?, "", None))
}

/// The sign-up form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// A form error is shown on the form again; anything else is an error page.
fn form_error(e: AppError) -> Result<(StatusCode, AppError), PageError> {
    match e {
        AppError::Invalid(_)
        | AppError::EmailTaken
        | AppError::BadCredentials
        | AppError::RateLimited(_) => Ok((e.status(), e)),
        e => Err(PageError(e)),
    }
}

/// `POST /signup`: creates the account, logs in, back to the cart.
pub(crate) async fn signup<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Form(form): Form<SignupForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    match actions::signup(&db, &session, &form.email, &form.name, &form.password).await {
        Ok(_) => Ok(Redirect::to("/cart").into_response()),
        Err(e) => {
            let (status, e) = form_error(e)?;
            let chrome = chrome(&session).await?;
            Ok((
                status,
                signup_page(&chrome, &form.email, &form.name, Some(&e)),
            )
                .into_response())
        }
    }
}

/// The log-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: logs in (a new session ID), back to the cart.
pub(crate) async fn login<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    ip: ClientIp,
    Form(form): Form<LoginForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    match actions::login(&shop, &db, &session, ip, &form.email, &form.password).await {
        Ok(_) => Ok(Redirect::to("/cart").into_response()),
        Err(e) => {
            let (status, e) = form_error(e)?;
            let chrome = chrome(&session).await?;
            let mut response = (status, login_page(&chrome, &form.email, Some(&e))).into_response();
            if let AppError::RateLimited(secs) = e {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.into());
            }
            Ok(response)
        }
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: the session is destroyed.
pub(crate) async fn logout(session: Session, Form(form): Form<TokenForm>) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    actions::logout(&session).await?;
    Ok(Redirect::to("/"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SavedQuery {
    saved: Option<u8>,
}

/// `GET /profile`: name, addresses and orders, read with the session's
/// causal token (right after saving, the saved values).
pub(crate) async fn profile<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Query(q): Query<SavedQuery>,
) -> PageResult<Html<String>> {
    let user = actions::require_user(&session).await?;
    let profile = actions::profile(&db, &user).await?;
    let orders = {
        let mut conn = db.reader().await.map_err(AppError::from)?;
        DB::orders(&mut *conn, user.id)
            .await
            .map_err(AppError::from)?
    };
    let chrome = chrome(&session).await?;
    Ok(page(
        "Your profile",
        &chrome,
        html! {
            @if q.saved.is_some() { p class="notice" id="saved" { "Saved." } }
            form method="post" action="/profile" class="stacked" id="profile" {
                (csrf_field(&chrome))
                p { "E-mail: " span id="email" { (profile.email) } }
                label { "Name " input type="text" name="name" id="name" value=(profile.name) maxlength="100"; }
                @for i in 0..MAX_ADDRESSES {
                    label {
                        "Address " (i + 1) " "
                        input type="text" name={ "address" (i) } id={ "address" (i) }
                            value=(profile.addresses.get(i).map(String::as_str).unwrap_or_default()) maxlength="300";
                    }
                }
                button type="submit" { "Save" }
            }
            h2 { "Orders" }
            @if orders.is_empty() {
                p { "No orders yet." }
            } @else {
                ul id="orders" {
                    @for o in &orders {
                        li { a href={ "/orders/" (o.id) } { "Order #" (o.id) } " · " (price(o.total_cents)) }
                    }
                }
            }
        },
    ))
}

/// The profile form.
#[derive(Debug, Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    address0: String,
    #[serde(default)]
    address1: String,
    #[serde(default)]
    address2: String,
}

/// `POST /profile`: saves on the primary; the causal token goes into the
/// session, so the profile page that follows shows the saved values.
pub(crate) async fn save_profile<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Form(form): Form<ProfileForm>,
) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    let user = actions::require_user(&session).await?;
    let addresses = [form.address0, form.address1, form.address2];
    actions::save_profile(&db, &user, &form.name, &addresses).await?;
    Ok(Redirect::to("/profile?saved=1"))
}

/// `POST /checkout`: the order is written, then its confirmation page.
pub(crate) async fn checkout<DB: Repo>(
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
pub(crate) async fn order<DB: Repo>(
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
