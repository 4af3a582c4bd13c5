//! The profile page and its form.

use axum::Form;
use axum::extract::Query;
use axum::response::{Html, Redirect};
use db_router::DbHandle;
use maud::html;
use serde::Deserialize;
use session_core::Session;

use super::error::PageResult;
use super::layout::{chrome, csrf_field, page, price};
use crate::actions::{self, MAX_ADDRESSES};
use crate::db::Repo;
use crate::error::AppError;
use crate::security;

#[derive(Debug, Deserialize)]
pub(super) struct SavedQuery {
    saved: Option<u8>,
}

/// `GET /profile`: name, addresses and orders, read with the session's
/// causal token (right after saving, the saved values).
pub(super) async fn profile<DB: Repo>(
    db: DbHandle<DB>,
    session: Session,
    Query(q): Query<SavedQuery>,
) -> PageResult<Html<String>> {
    let user = actions::require_user(&session).await?;
    let profile = actions::profile(&db, &user).await?;
    let orders = {
        let (mut conn, source) = db.reader_with_source().await.map_err(AppError::from)?;
        crate::footer::read_from(source);
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
            p id="account-links" { a href="/sessions" id="sessions-link" { "Your sessions" } " · " a href="/password" id="password-link" { "Change the password" } }
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
pub(super) struct ProfileForm {
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
pub(super) async fn save_profile<DB: Repo>(
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
