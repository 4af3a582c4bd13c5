//! `SessionLayer` as an actix-web middleware, and the service it builds.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{COOKIE, HeaderValue, RETRY_AFTER, SET_COOKIE};
use actix_web::{HttpMessage as _, HttpResponse};

use crate::SessionLayer;
use crate::lifecycle::{self, Sessions};

/// The actix-web service that [`SessionLayer`] builds as a `Transform`
/// (`App::wrap(layer)`); see the [module documentation](super).
pub struct SessionMiddleware<S> {
    inner: Rc<S>,
    sessions: Sessions,
}

impl<S> SessionMiddleware<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> fmt::Debug for SessionMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddleware<S>;
    type InitError = ();
    type Future = Pin<Box<dyn Future<Output = Result<Self::Transform, Self::InitError>>>>;

    /// Runs once per worker, on the worker's thread: the store gets
    /// connections of its own there when it offers them
    /// ([`SessionStore::on_current_runtime`](crate::SessionStore::on_current_runtime)),
    /// so that the worker's store calls never wait on another thread.
    fn new_transform(&self, service: S) -> Self::Future {
        let sessions = self.sessions().clone();
        Box::pin(async move {
            Ok(SessionMiddleware {
                inner: Rc::new(service),
                sessions: sessions.on_current_runtime().await,
            })
        })
    }
}

impl<S, B> Service<ServiceRequest> for SessionMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let cookies = req
            .headers()
            .get_all(COOKIE)
            .filter_map(|h| h.to_str().ok());
        let session = self.sessions.start(cookies);
        req.extensions_mut().insert(session.clone());
        let inner = Rc::clone(&self.inner);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            match lifecycle::finish(&session).await {
                Ok(None) => {}
                Ok(Some(cookie)) => match HeaderValue::from_str(&cookie) {
                    Ok(value) => {
                        res.headers_mut().append(SET_COOKIE, value);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "session cookie is not a valid header");
                    }
                },
                Err(e) => {
                    let mut failed = HttpResponse::new(super::status(e.status()));
                    if let Some(after) = super::retry_after(&e) {
                        failed.headers_mut().insert(RETRY_AFTER, after);
                    }
                    let (req, _) = res.into_parts();
                    let res = ServiceResponse::new(req, failed).map_into_right_body();
                    responded(&session, &res).await;
                    return Ok(res);
                }
            }
            responded(&session, &res).await;
            Ok(res.map_into_left_body())
        })
    }
}

/// Hands the final status to the shared lifecycle (which counts a `503`
/// caused by the session store).
async fn responded<B>(session: &crate::Session, res: &ServiceResponse<B>) {
    let status = http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    lifecycle::responded(session, status).await;
}
