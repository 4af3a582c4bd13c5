//! What the pages and the JSON API both do: cart changes, accounts,
//! profiles and orders.

use std::future::Future;
use std::net::IpAddr;

use db_router::DbHandle;
use serde::{Deserialize, Serialize};
use session_core::Session;

use crate::cart::{CART_KEY, Cart, MAX_QTY};
use crate::catalog::{MAX_SKU_LEN, Product};
use crate::db::{Order, OrderLine, Profile, Repo, UserRow, is_unique_violation};
use crate::error::AppError;
use crate::footer;
use crate::security::{self, CSRF_KEY, ClientDevice};
use crate::state::Shop;

/// Session key of the logged-in user.
pub(crate) const USER_KEY: &str = "user";

/// Most addresses a profile keeps.
pub(crate) const MAX_ADDRESSES: usize = 3;

/// The logged-in user, as kept in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionUser {
    pub(crate) id: i64,
    pub(crate) email: String,
}

pub(crate) async fn current_user(session: &Session) -> Result<Option<SessionUser>, AppError> {
    Ok(session.get::<SessionUser>(USER_KEY).await?)
}

pub(crate) async fn require_user(session: &Session) -> Result<SessionUser, AppError> {
    current_user(session).await?.ok_or(AppError::Unauthorized)
}

/// The session's cart (empty when it has none).
///
/// # Errors
///
/// The session cannot be loaded.
pub async fn load_cart(session: &Session) -> Result<Cart, AppError> {
    Ok(session.get::<Cart>(CART_KEY).await?.unwrap_or_default())
}

/// A product by SKU, through the cache.
///
/// # Errors
///
/// An empty, overlong or unknown SKU; a failing cache or database.
pub async fn product<DB: Repo>(shop: &Shop<DB>, sku: &str) -> Result<Product, AppError> {
    if sku.is_empty() || sku.len() > MAX_SKU_LEN {
        return Err(AppError::UnknownProduct(
            sku.chars().take(MAX_SKU_LEN).collect(),
        ));
    }
    footer::through_cache(shop.products.get(&sku.to_owned()))
        .await?
        .ok_or_else(|| AppError::UnknownProduct(sku.to_owned()))
}

/// Adds `qty` of `sku` to the session's cart (an atomic update) and
/// returns the cart.
///
/// # Errors
///
/// A quantity outside `1..=MAX_QTY`, an unknown product, a session that
/// cannot be saved.
pub async fn add_to_cart<DB: Repo>(
    shop: &Shop<DB>,
    session: &Session,
    sku: &str,
    qty: u32,
) -> Result<Cart, AppError> {
    if !(1..=MAX_QTY).contains(&qty) {
        return Err(AppError::BadQuantity);
    }
    product(shop, sku).await?;
    Ok(session
        .update(CART_KEY, |cart: Option<Cart>| {
            let mut cart = cart.unwrap_or_default();
            cart.add(sku, qty);
            cart
        })
        .await?)
}

/// Removes the line of `sku` from the session's cart and returns the
/// cart.
///
/// # Errors
///
/// A session that cannot be saved.
pub async fn remove_from_cart(session: &Session, sku: &str) -> Result<Cart, AppError> {
    Ok(session
        .update(CART_KEY, |cart: Option<Cart>| {
            let mut cart = cart.unwrap_or_default();
            cart.remove(sku);
            cart
        })
        .await?)
}

fn clean_text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(AppError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::Invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(value.to_owned())
}

fn clean_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = (3..=254).contains(&email.len())
        && email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(AppError::Invalid("enter a valid e-mail address".to_owned()))
    }
}

fn check_password(password: &str) -> Result<(), AppError> {
    if !(8..=256).contains(&password.chars().count()) {
        return Err(AppError::Invalid(
            "the password needs 8 to 256 characters".to_owned(),
        ));
    }
    Ok(())
}

/// Makes `user` the session's user: a new session ID (so an ID seen or
/// planted before log-in is worthless), the session tied to the account
/// with the client's device (where the store keeps a per-user index) and
/// a new CSRF token, keeping the cart.
async fn start_session<DB: Repo>(
    shop: &Shop<DB>,
    session: &Session,
    client: &ClientDevice,
    user: SessionUser,
) -> Result<SessionUser, AppError> {
    session.cycle_id().await?;
    if shop.user_sessions {
        session
            .bind_user(user.id.to_string(), client.device())
            .await?;
    }
    session.insert(USER_KEY, &user).await?;
    new_csrf_token(session).await?;
    Ok(user)
}

/// A new CSRF token for a session whose ID changed: forms of the old ID
/// no longer post.
async fn new_csrf_token(session: &Session) -> Result<(), AppError> {
    Ok(session.insert(CSRF_KEY, security::random_token()).await?)
}

/// The account with this e-mail. In a write request the reader is the
/// primary, which has every account.
async fn account<DB: Repo>(db: &DbHandle<DB>, email: &str) -> Result<Option<UserRow>, AppError> {
    let (mut conn, source) = db.reader_with_source().await?;
    footer::read_from(source);
    Ok(DB::user_by_email(&mut *conn, email).await?)
}

/// A password check under the log-in limits, shared by log-in and
/// password change: refused while the account `email` or the address `ip`
/// has used up its failed attempts; otherwise the account that `lookup`
/// finds when `password` matches its hash, else `wrong`, counted as a
/// failure.
async fn check_password_limited<DB: Repo>(
    shop: &Shop<DB>,
    email: &str,
    ip: Option<IpAddr>,
    password: &str,
    lookup: impl Future<Output = Result<Option<UserRow>, AppError>>,
    wrong: AppError,
) -> Result<UserRow, AppError> {
    shop.limiter
        .check(email, ip)
        .map_err(AppError::RateLimited)?;
    let user = lookup.await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if password.len() > 1024 || !security::verify_password(password.to_owned(), hash).await {
        shop.limiter.failed(email, ip);
        return Err(wrong);
    }
    shop.limiter.succeeded(email);
    user.ok_or(wrong)
}

pub(crate) async fn signup<DB: Repo>(
    shop: &Shop<DB>,
    db: &DbHandle<DB>,
    session: &Session,
    client: &ClientDevice,
    email: &str,
    name: &str,
    password: &str,
) -> Result<SessionUser, AppError> {
    let email = clean_email(email)?;
    let name = clean_text("the name", name, 100)?;
    check_password(password)?;
    let hash = security::hash_password(password.to_owned()).await?;
    let mut tx = db.begin().await?;
    let id = match DB::create_user(&mut *tx, &email, &hash, &name).await {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => return Err(AppError::EmailTaken),
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    start_session(shop, session, client, SessionUser { id, email }).await
}

pub(crate) async fn login<DB: Repo>(
    shop: &Shop<DB>,
    db: &DbHandle<DB>,
    session: &Session,
    client: &ClientDevice,
    email: &str,
    password: &str,
) -> Result<SessionUser, AppError> {
    let email = clean_email(email).map_err(|_| AppError::BadCredentials)?;
    let lookup = account(db, &email);
    let wrong = AppError::BadCredentials;
    let user = check_password_limited(shop, &email, client.ip.0, password, lookup, wrong).await?;
    start_session(
        shop,
        session,
        client,
        SessionUser {
            id: user.id,
            email: user.email,
        },
    )
    .await
}

/// Changes the password of the session's user, who gives the current one
/// (checked under the log-in limits): stores the new hash, signs out every
/// other session of the user and gives this one a new ID (and CSRF
/// token). Returns how many sessions were signed out.
pub(crate) async fn change_password<DB: Repo>(
    shop: &Shop<DB>,
    db: &DbHandle<DB>,
    session: &Session,
    client: &ClientDevice,
    current: &str,
    new: &str,
) -> Result<usize, AppError> {
    // Without a per-user index the other sessions would stay signed in.
    crate::user_sessions::require_index(shop)?;
    let user = require_user(session).await?;
    check_password(new)?;
    let lookup = async {
        let found = account(db, &user.email).await?;
        Ok(found.filter(|row| row.id == user.id))
    };
    let (email, wrong) = (user.email.as_str(), AppError::WrongPassword);
    check_password_limited(shop, email, client.ip.0, current, lookup, wrong).await?;
    let hash = security::hash_password(new.to_owned()).await?;
    let mut tx = db.begin().await?;
    DB::set_password_hash(&mut *tx, user.id, &hash).await?;
    tx.commit().await?;
    let revoked = session.revoke_other_sessions().await?;
    session.cycle_id().await?;
    new_csrf_token(session).await?;
    tracing::info!(user = user.id, revoked, "password changed");
    Ok(revoked)
}

pub(crate) async fn logout(session: &Session) -> Result<(), AppError> {
    Ok(session.destroy().await?)
}

/// The user's profile, read with the session's causal token: right after a
/// save it comes from the primary or a replica that has the save.
pub(crate) async fn profile<DB: Repo>(
    db: &DbHandle<DB>,
    user: &SessionUser,
) -> Result<Profile, AppError> {
    let (mut conn, source) = db.reader_with_source().await?;
    footer::read_from(source);
    DB::profile(&mut *conn, user.id)
        .await?
        .ok_or(AppError::NotFound)
}

pub(crate) async fn save_profile<DB: Repo>(
    db: &DbHandle<DB>,
    user: &SessionUser,
    name: &str,
    addresses: &[String],
) -> Result<(), AppError> {
    let name = clean_text("the name", name, 100)?;
    let addresses = addresses
        .iter()
        .map(|a| clean_text("an address", a, 300))
        .filter(|a| !matches!(a, Ok(a) if a.is_empty()))
        .collect::<Result<Vec<_>, _>>()?;
    if addresses.len() > MAX_ADDRESSES {
        return Err(AppError::Invalid(format!(
            "at most {MAX_ADDRESSES} addresses"
        )));
    }
    let mut tx = db.begin().await?;
    DB::save_profile(&mut *tx, user.id, &name, &addresses).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes the order on the primary in one transaction, then takes the
/// ordered quantities out of the cart.
pub(crate) async fn checkout<DB: Repo>(
    shop: &Shop<DB>,
    db: &DbHandle<DB>,
    session: &Session,
) -> Result<Order, AppError> {
    let user = require_user(session).await?;
    let cart = load_cart(session).await?;
    if cart.items.is_empty() {
        return Err(AppError::EmptyCart);
    }
    let mut lines = Vec::with_capacity(cart.items.len());
    for item in &cart.items {
        let p = product(shop, &item.sku).await?;
        lines.push(OrderLine {
            sku: p.sku,
            name: p.name,
            qty: i64::from(item.qty),
            price_cents: p.price_cents,
        });
    }
    let mut tx = db.begin().await?;
    let ship_to = DB::profile(&mut *tx, user.id)
        .await?
        .and_then(|p| p.addresses.into_iter().next())
        .unwrap_or_else(|| "pick-up at the shop".to_owned());
    let order = DB::create_order(&mut *tx, user.id, &ship_to, &lines).await?;
    tx.commit().await?;
    let ordered: Vec<(String, u32)> = lines
        .iter()
        .map(|l| (l.sku.clone(), u32::try_from(l.qty).unwrap_or(u32::MAX)))
        .collect();
    session
        .update(CART_KEY, |cart: Option<Cart>| {
            let mut cart = cart.unwrap_or_default();
            for (sku, qty) in &ordered {
                cart.take(sku, *qty);
            }
            cart
        })
        .await?;
    tracing::info!(order = order.id, user = user.id, "order placed");
    Ok(order)
}

/// One of the user's orders, read with the session's causal token.
pub(crate) async fn order<DB: Repo>(
    db: &DbHandle<DB>,
    user: &SessionUser,
    id: i64,
) -> Result<Order, AppError> {
    let (mut conn, source) = db.reader_with_source().await?;
    footer::read_from(source);
    DB::order(&mut *conn, user.id, id)
        .await?
        .ok_or(AppError::NotFound)
}
