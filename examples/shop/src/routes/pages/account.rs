//! Signing up, logging in and out.

use axum::Form;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect};
use db_router::DbHandle;
use maud::{Markup, html};
use serde::Deserialize;
use session_core::Session;

use super::error::PageResult;
use super::layout::{Chrome, TokenForm, chrome, csrf_field, error_line, page};
use crate::actions;
use crate::db::Repo;
use crate::error::AppError;
use crate::security::{self, ClientIp};
use crate::state::AppState;

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

/// After an account form was sent: on to the cart, or the form again
/// (drawn by `again`) with a form error and its status (and `Retry-After`
/// after too many failed log-ins); any other error is an error page.
async fn to_cart_or_again<T>(
    session: &Session,
    outcome: Result<T, AppError>,
    again: impl FnOnce(&Chrome, &AppError) -> Html<String>,
) -> PageResult {
    let error = match outcome {
        Ok(_) => return Ok(Redirect::to("/cart").into_response()),
        Err(
            e @ (AppError::Invalid(_)
            | AppError::EmailTaken
            | AppError::BadCredentials
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
    db: DbHandle<DB>,
    session: Session,
    Form(form): Form<SignupForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    let outcome = actions::signup(&db, &session, &form.email, &form.name, &form.password).await;
    to_cart_or_again(&session, outcome, |chrome, e| {
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
    ip: ClientIp,
    Form(form): Form<LoginForm>,
) -> PageResult {
    security::check_csrf(&session, &form.csrf).await?;
    let outcome = actions::login(&shop, &db, &session, ip, &form.email, &form.password).await;
    to_cart_or_again(&session, outcome, |chrome, e| {
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
