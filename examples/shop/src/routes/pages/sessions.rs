//! "Your sessions": the devices signed in to the account, with forms to
//! sign out one of them or all the others.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::Deserialize;
use session_core::Session;

use super::error::PageResult;
use super::layout::{TokenForm, chrome, csrf_field, page, unavailable};
use crate::db::Repo;
use crate::security;
use crate::state::AppState;
use crate::user_sessions;

const TITLE: &str = "Your sessions";

/// A time as `2026-11-30 18:37 UTC`.
fn when(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct NoticeQuery {
    signed_out: Option<usize>,
    password: Option<String>,
}

/// `GET /sessions`: the signed-in devices, the most recently seen first,
/// this one marked; or, with the cookie store, a page saying it is not
/// available.
pub(super) async fn sessions<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> PageResult {
    crate::actions::require_user(&session).await?;
    let chrome = chrome(&session).await?;
    let list = match user_sessions::list(&shop, &session).await {
        Ok(list) => list,
        Err(e @ crate::error::AppError::NoUserSessions) => {
            return Ok(unavailable(TITLE, &chrome, &e));
        }
        Err(e) => return Err(e.into()),
    };
    let others = list.iter().filter(|s| !s.current).count();
    Ok(page(
        TITLE,
        &chrome,
        html! {
            @if q.password.is_some() { p class="notice" id="password-changed" { "Password changed; every other device is signed out." } }
            @if let Some(n) = q.signed_out { p class="notice" id="signed-out" { "Signed out " (n) " other device(s)." } }
            table id="sessions" {
                tr { th { "Device" } th { "Address" } th { "Signed in" } th { "Last seen" } th {} }
                @for s in &list {
                    tr data-handle=(s.handle) class=[s.current.then_some("current")] {
                        td {
                            (s.device.user_agent.as_deref().unwrap_or("unknown browser"))
                            @if s.current { " " strong id="this-device" { "(this device)" } }
                        }
                        td { (s.device.ip.as_deref().unwrap_or("")) }
                        td { (when(s.created_at)) }
                        td { (when(s.last_seen)) }
                        td {
                            form method="post" action="/sessions/revoke" {
                                (csrf_field(&chrome))
                                input type="hidden" name="handle" value=(s.handle);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
            }
            @if others > 0 {
                form method="post" action="/sessions/revoke-others" {
                    (csrf_field(&chrome))
                    button type="submit" id="revoke-others" { "Sign out all other devices" }
                }
            }
            p { a href="/password" { "Change the password" } " (signs out every other device too)" }
        },
    )
    .into_response())
}

/// The sign-out-one form.
#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    handle: String,
}

/// `POST /sessions/revoke`: signs that device out, back to the list (or,
/// when it was this one, to the log-in page through it).
pub(super) async fn revoke<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Form(form): Form<RevokeForm>,
) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    user_sessions::revoke(&shop, &session, &form.handle).await?;
    Ok(Redirect::to("/sessions"))
}

/// `POST /sessions/revoke-others`: signs out every other device.
pub(super) async fn revoke_others<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
    Form(form): Form<TokenForm>,
) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    let n = user_sessions::revoke_others(&shop, &session).await?;
    Ok(Redirect::to(&format!("/sessions?signed_out={n}")))
}
