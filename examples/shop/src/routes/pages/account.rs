//! Signing up, logging in and out, changing the password.

use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect};
use db_router::DbHandle;
use maud::{Markup, html};
use serde::Deserialize;
use session_core::Session;

use super::error::PageResult;
use super::layout::{Chrome, TokenForm, chrome, csrf_field, error_line, page, unavailable};
use crate::actions;
use crate::db::Repo;
use crate::error::AppError;
use crate::security::{self, ClientDevice};
use crate::state::AppState;
use crate::user_sessions;

/// What tells the sign-up and log-in pages apart.
struct AccountForm<'a> {
    title: &'a str,
    /// The form's ID, and the path it posts to.
    id: &'a str,
    /// The e-mail typed last time.
    email: &'a str,
    /// The fields after the e-mail.
    fields: Markup,
    submit: &'a str,
    /// Below the form: a link to the other one.
    footer: Markup,
}

/// A page with an account form, after the error of the last attempt.
fn account_page(chrome: &Chrome, form: AccountForm<'_>, error: Option<&AppError>) -> Html<String> {
    page(
        form.title,
        chrome,
        html! {
            (error_line(error))
            form method="post" action={ "/" (form.id) } class="stacked" id=(form.id) {
                (csrf_field(chrome))
                label { "E-mail " input type="email" name="email" id="email" value=(form.email) required autocomplete="username"; }
                (form.fields)
                button type="submit" { (form.submit) }
            }
            (form.footer)
        },
    )
}

fn signup_page(chrome: &Chrome, email: &str, name: &str, error: Option<&AppError>) -> Html<String> {
    let form = AccountForm {
        title: "Sign up",
        id: "signup",
        email,
        fields: html! {
            label { "Name " input type="text" name="name" id="name" value=(name) maxlength="100"; }
            label { "Password (8 characters or more) " input type="password" name="password" id="password" required minlength="8" autocomplete="new-password"; }
        },
        submit: "Create the account",
        footer: html! { p { "Have an account? " a href="/login" { "Log in" } } },
    };
    account_page(chrome, form, error)
}

fn login_page(chrome: &Chrome, email: &str, error: Option<&AppError>) -> Html<String> {
    let form = AccountForm {
        title: "Log in",
        id: "login",
        email,
        fields: html! {
            label { "Password " input type="password" name="password" id="password" required autocomplete="current-password"; }
        },
        submit: "Log in",
        footer: html! { p { "New here? " a href="/signup" { "Sign up" } } },
    };
    account_page(chrome, form, error)
}

/// After an account form was sent: on to `next`, or the form again
/// (drawn by `again`) with a form error and its status (and `Retry-After`
/// after too many failed attempts); any other error is an error page.
async fn onward_or_again<T>(
    session: &Session,
    outcome: Result<T, AppError>,
    next: &str,
    again: impl FnOnce(&Chrome, &AppError) -> Html<String>,
) -> PageResult {
    let error = match outcome {
        Ok(_) => return Ok(Redirect::to(next).into_response()),
        Err(
            e @ (AppError::Invalid(_)
            | AppError::EmailTaken
            | AppError::BadCredentials
            | AppError::WrongPassword
            | AppError::RateLimited(_)),
        ) => e,
        Err(e) => return Err(e.into()),
    };
    let chrome = chrome(session).await?;
    let mut response = (error.status(), again(&chrome, &error)).into_response();
    error.set_retry_after(&mut response);
    Ok(response)
}

/// `GET /signup`.
pub(super) async fn signup_form(session: Session) -> PageResult<Html<String>> {
    Ok(signup_page(&chrome(&session).await?, "", "", None))
}

/// `GET /login`.
pub(super) async fn login_form(session: Session) -> PageResult<Html<String>> {
    Ok(login_page(&chrome(&session).await?, "", None))
}

/// The sign-up form.
#[derive(Debug, Deserialize)]
pub(super) struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /signup`: creates the account, logs in, back to the cart.
pub(super) async fn signup<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    client: ClientDevice,
    Form(form): Form<SignupForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    let (email, name, password) = (&form.email, &form.name, &form.password);
    let outcome = actions::signup(&shop, &db, &session, &client, email, name, password).await;
    onward_or_again(&session, outcome, "/cart", |chrome, e| {
        signup_page(chrome, &form.email, &form.name, Some(e))
    })
    .await
}

/// The log-in form.
#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: logs in (a new session ID), back to the cart.
pub(super) async fn login<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    client: ClientDevice,
    Form(form): Form<LoginForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    let outcome = actions::login(&shop, &db, &session, &client, &form.email, &form.password).await;
    onward_or_again(&session, outcome, "/cart", |chrome, e| {
        login_page(chrome, &form.email, Some(e))
    })
    .await
}

/// `POST /logout`: the session is destroyed.
pub(super) async fn logout(session: Session, Form(form): Form<TokenForm>) -> PageResult<Redirect> {
    security::check_csrf(&session, &form.csrf).await?;
    actions::logout(&session).await?;
    Ok(Redirect::to("/"))
}

fn password_page(chrome: &Chrome, error: Option<&AppError>) -> Html<String> {
    page(
        "Change the password",
        chrome,
        html! {
            (error_line(error))
            form method="post" action="/password" class="stacked" id="password" {
                (csrf_field(chrome))
                label { "Current password " input type="password" name="current" id="current" required autocomplete="current-password"; }
                label { "New password (8 characters or more) " input type="password" name="new" id="new" required minlength="8" autocomplete="new-password"; }
                button type="submit" { "Change the password" }
            }
            p { "Every other device signed in to your account is signed out." }
        },
    )
}

/// `GET /password`: the password form, or (with a session store that
/// cannot sign other devices out) a page saying it is not available.
pub(super) async fn password_form<DB: Repo>(
    State(shop): State<AppState<DB>>,
    session: Session,
) -> PageResult {
    actions::require_user(&session).await?;
    let chrome = chrome(&session).await?;
    if let Err(e) = user_sessions::require_index(&shop) {
        return Ok(unavailable("Change the password", &chrome, &e));
    }
    Ok(password_page(&chrome, None).into_response())
}

/// The password form.
#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

/// `POST /password`: changes the password (a new session ID, the other
/// sessions signed out), on to the sessions page.
pub(super) async fn change_password<DB: Repo>(
    State(shop): State<AppState<DB>>,
    db: DbHandle<DB>,
    session: Session,
    client: ClientDevice,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    let outcome =
        actions::change_password(&shop, &db, &session, &client, &form.current, &form.new).await;
    onward_or_again(
        &session,
        outcome,
        "/sessions?password=changed",
        |chrome, e| password_page(chrome, Some(e)),
    )
    .await
}
