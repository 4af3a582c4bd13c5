//! Causal tokens between a user's requests, from actix-web: the pattern of
//! `db_router::SessionCarrier`'s "outside Tower" section.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, web};
use db_router::{DbRouter, Role, SessionCarrier};
use session_core::Session;
use shop::Repo;

/// Middleware (through `actix_web::middleware::from_fn`) giving each
/// request a [`db_router::DbHandle`] in its extensions (handlers take it
/// as `web::ReqData<DbHandle<DB>>`), as the shop's `RouterLayer` does:
/// `GET`, `HEAD` and `OPTIONS` read, and their reads carry the user's
/// causal token from the session; any other method writes, and when it
/// used the primary its token goes into the session for the user's next
/// reads. Wrap it inside the session middleware, which saves the session
/// after it.
///
/// # Errors
///
/// No session (the session middleware is missing), or what the handler
/// failed with.
pub async fn carry_tokens<DB: Repo>(
    router: web::Data<DbRouter<DB>>,
    session: Session,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let role = match *req.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => Role::Read,
        _ => Role::Write,
    };
    let carrier = SessionCarrier::new();
    let db = carrier
        .start(router.get_ref().clone(), role, &session)
        .await;
    req.extensions_mut().insert(db.clone());
    let res = next.call(req).await?;
    carrier.finish(&db, &session).await;
    Ok(res)
}
