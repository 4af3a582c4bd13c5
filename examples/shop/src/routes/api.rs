//! The JSON API. Every `POST` takes a JSON body (`Content-Type:
//! application/json`, enforced by the `Json` extractor), which is what
//! protects it from cross-site forms.

use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use db_router::DbHandle;
use serde::Deserialize;
use serde_json::{Value, json};
use session_core::Session;

use crate::actions::{self, SessionUser};
use crate::caches::Listing;
use crate::cart::Cart;
use crate::catalog::Product;
use crate::db::{Order, Profile, Repo};
use crate::error::AppError;
use crate::security::ClientDevice;
use crate::state::AppState;
use crate::user_sessions;

/// The API's routes, under `/api`.
pub(super) fn routes<DB: Repo>() -> Router<AppState<DB>> {
    Router::new()
        .route("/api/products", get(products::<DB>))
        .route("/api/products/{sku}", get(product::<DB>))
        .route("/api/cart", get(cart))
        .route("/api/cart/items", post(add::<DB>))
        .route("/api/cart/items/{sku}", delete(remove))
        .route("/api/signup", post(signup::<DB>))
        .route("/api/login", post(login::<DB>))
        .route("/api/logout", post(logout))
        .route("/api/profile", get(profile::<DB>).post(save_profile::<DB>))
        .route("/api/checkout", post(checkout::<DB>))
        .route("/api/orders/{id}", get(order::<DB>))
        .route("/api/sessions", get(sessions::<DB>))
        .route("/api/sessions/revoke-others", post(revoke_others::<DB>))
        .route("/api/sessions/{handle}", delete(revoke_session::<DB>))
        .route("/api/password", post(change_password::<DB>))
}

type ApiResult<T = Value> = Result<Json<T>, AppError>;

fn cart_json(cart: &Cart) -> Value {
    cart.to_json()
}

fn user_json(user: &SessionUser) -> Value {
    json!({ "user": { "id": user.id, "email": user.email } })
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    page: Option<u32>,
}

/// `GET /api/products[?page=N]`: every product, or one page.
pub(crate) async fn products<DB: Repo>(
    State(shop): State<AppState<DB>>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Vec<Product>> {
    let listing = q.page.map_or(Listing::All, Listing::Page);
    Ok(Json(shop.listing.get(&listing).await?.unwrap_or_default()))
}

/// `GET /api/products/{sku}`.
pub(crate) async fn product<DB: Repo>(
    State(shop): State<AppState<DB>>,
    Path(sku): Path<String>,
) -> ApiResult<Product> {
    Ok(Json(actions::product(&shop, &sku).await?))
}

/// `GET /api/cart`.
pub(crate) async fn cart(session: Session) -> ApiResult {
    Ok(Json(cart_json(&actions::load_cart(&session).await?)))
}

/// Body of `POST /api/cart/items` (and of the add-to-cart form): `qty`
/// defaults to 1.
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub struct AddItem {
    /// The product's SKU.
    pub sku: String,
    /// How many.
    #[serde(default = "one")]
    pub qty: u32,
}

fn one() -> u32 {
    1
}

/// `POST /api/cart/items` `{"sku": "…", "qty": N}`: the updated cart.
pub(crate) async fn add<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Json(item): Json<AddItem>,
) -> ApiResult {
    let cart = actions::add_to_cart(&shop, &session, &item.sku, item.qty).await?;
    Ok(Json(cart_json(&cart)))
}

/// `DELETE /api/cart/items/{sku}`: the updated cart.
pub(crate) async fn remove(session: Session, Path(sku): Path<String>) -> ApiResult {
    Ok(Json(cart_json(
        &actions::remove_from_cart(&session, &sku).await?,
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Signup {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
}

/// `POST /api/signup` `{"email", "password", "name"}`: creates the account
/// and logs in.
pub(crate) async fn signup<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    client: ClientDevice,
    Json(body): Json<Signup>,
) -> ApiResult {
    let (email, name, password) = (&body.email, &body.name, &body.password);
    let user = actions::signup(&shop, &db, &session, &client, email, name, password).await?;
    Ok(Json(user_json(&user)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Login {
    email: String,
    password: String,
}

/// `POST /api/login` `{"email", "password"}`.
pub(crate) async fn login<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    client: ClientDevice,
    Json(body): Json<Login>,
) -> ApiResult {
    let user = actions::login(&shop, &db, &session, &client, &body.email, &body.password).await?;
    Ok(Json(user_json(&user)))
}

/// `POST /api/logout` `{}`.
pub(crate) async fn logout(session: Session, Json(_): Json<Value>) -> ApiResult {
    actions::logout(&session).await?;
    Ok(Json(json!({ "ok": true })))
}

/// `GET /api/profile`: name, e-mail and addresses.
pub(crate) async fn profile<DB: Repo>(db: DbHandle<DB>, session: Session) -> ApiResult<Profile> {
    let user = actions::require_user(&session).await?;
    Ok(Json(actions::profile(&db, &user).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SaveProfile {
    name: String,
    #[serde(default)]
    addresses: Vec<String>,
}

/// `POST /api/profile` `{"name", "addresses": […]}`: the saved profile.
pub(crate) async fn save_profile<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Json(body): Json<SaveProfile>,
) -> ApiResult<Profile> {
    let user = actions::require_user(&session).await?;
    actions::save_profile(&db, &user, &body.name, &body.addresses).await?;
    // Same request, so the same primary: the saved state.
    Ok(Json(actions::profile(&db, &user).await?))
}

/// `POST /api/checkout` `{}`: the new order.
pub(crate) async fn checkout<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    Json(_): Json<Value>,
) -> ApiResult<Order> {
    Ok(Json(actions::checkout(&shop, &db, &session).await?))
}

/// `GET /api/orders/{id}`: one of the user's orders.
pub(crate) async fn order<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Path(id): Path<i64>,
) -> ApiResult<Order> {
    let user = actions::require_user(&session).await?;
    Ok(Json(actions::order(&db, &user, id).await?))
}

/// `GET /api/sessions`: the user's signed-in devices, `{"sessions": [{"handle",
/// "created_at_ms", "last_seen_ms", "user_agent", "ip", "current"}]}`.
pub(crate) async fn sessions<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
) -> ApiResult {
    let sessions = user_sessions::list(&shop, &session).await?;
    let sessions: Vec<Value> = sessions.iter().map(user_sessions::to_json).collect();
    Ok(Json(json!({ "sessions": sessions })))
}

/// `DELETE /api/sessions/{handle}`: signs that session out (`404` when the
/// user has no live session with this handle, `400` for a malformed one).
pub(crate) async fn revoke_session<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Path(handle): Path<String>,
) -> ApiResult {
    user_sessions::revoke(&shop, &session, &handle).await?;
    Ok(Json(json!({ "ok": true })))
}

/// `POST /api/sessions/revoke-others` `{}`: signs out every other session
/// of the user, `{"revoked": N}`.
pub(crate) async fn revoke_others<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Json(_): Json<Value>,
) -> ApiResult {
    let revoked = user_sessions::revoke_others(&shop, &session).await?;
    Ok(Json(json!({ "revoked": revoked })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangePassword {
    current: String,
    new: String,
}

/// `POST /api/password` `{"current", "new"}`: the new password is stored,
/// this session gets a new ID and every other session of the user is
/// signed out, `{"revoked": N}`. Limited like log-in.
pub(crate) async fn change_password<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    client: ClientDevice,
    Json(body): Json<ChangePassword>,
) -> ApiResult {
    let revoked =
        actions::change_password(&shop, &db, &session, &client, &body.current, &body.new).await?;
    Ok(Json(json!({ "revoked": revoked })))
}
