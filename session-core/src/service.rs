//! `SessionService`: the Tower front end of the request lifecycle.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{RETRY_AFTER, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use tower_service::Service;

use crate::cookie_header;
use crate::lifecycle::{self, Sessions};

/// The service built by [`SessionLayer`](crate::SessionLayer); see there.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    sessions: Sessions,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, sessions: Sessions) -> Self {
        SessionService { inner, sessions }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("sessions", &self.sessions)
            .finish()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let session = self
            .sessions
            .start(cookie_header::header_values(req.headers()));
        req.extensions_mut().insert(session.clone());

        // The clone may not be ready; use the instance that was polled.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            match lifecycle::finish(&session).await {
                Ok(None) => {}
                Ok(Some(cookie)) => {
                    if let Some(value) = header_value(&cookie) {
                        res.headers_mut().append(SET_COOKIE, value);
                    }
                }
                Err(e) => {
                    let mut failed = Response::new(ResBody::default());
                    *failed.status_mut() = e.status();
                    if let Some(after) = e.retry_after() {
                        failed.headers_mut().insert(RETRY_AFTER, after);
                    }
                    res = failed;
                }
            }
            lifecycle::responded(&session, res.status()).await;
            Ok(res)
        })
    }
}

fn header_value(cookie: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(cookie)
        .inspect_err(|e| tracing::error!(error = %e, "session cookie is not a valid header"))
        .ok()
}
