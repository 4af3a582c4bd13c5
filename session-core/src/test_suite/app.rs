//! `TestApp`: a minimal app around a `SessionLayer`, for store tests.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use serde::Serialize;
use tower::{Layer as _, Service, ServiceExt as _};

use super::FrontEnd;
#[cfg(feature = "actix")]
use super::actix_app::ActixApp;
use super::reply::{Handler, TestReply};
use crate::{Result, Session, SessionLayer};

/// A minimal app around a [`SessionLayer`] for store tests: each request
/// runs one async handler with the request's [`Session`] and an index.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use session_core::SessionLayer;
/// use session_core::test_suite::TestApp;
///
/// let app = TestApp::new(
///     SessionLayer::new(session_stores::MemoryStore::default()),
///     |session, _index| async move {
///         let n = session.update("n", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
///         Ok(n.to_string())
///     },
/// );
/// let first = app.send(None).await;
/// let second = app.send(first.cookie.as_deref()).await;
/// assert_eq!(second.body, "2");
/// # }
/// ```
#[derive(Clone)]
pub struct TestApp {
    pub(super) layer: SessionLayer,
    handler: Handler,
    pub(super) front_end: FrontEnd,
    /// The running actix-web app, started by the first request through it.
    #[cfg(feature = "actix")]
    actix: Arc<std::sync::OnceLock<ActixApp>>,
}

impl fmt::Debug for TestApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestApp")
            .field("layer", &self.layer)
            .field("front_end", &self.front_end)
            .finish_non_exhaustive()
    }
}

impl TestApp {
    /// An app running `f` behind `layer` (with a generous attempt limit
    /// of 1000 for concurrent saves), through the Tower front end.
    pub fn new<F, Fut>(layer: SessionLayer, f: F) -> Self
    where
        F: Fn(Session, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        TestApp {
            layer: layer.with_max_attempts(1000),
            handler: Arc::new(move |s, i| Box::pin(f(s, i))),
            front_end: FrontEnd::Tower,
            #[cfg(feature = "actix")]
            actix: Arc::default(),
        }
    }

    /// Overrides the layer's attempt limit.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.layer = self.layer.with_max_attempts(attempts);
        self.restart();
        self
    }

    /// Sends the requests through `front_end` (default
    /// [`FrontEnd::Tower`]).
    pub fn with_front_end(mut self, front_end: FrontEnd) -> Self {
        self.front_end = front_end;
        self.restart();
        self
    }

    /// Forgets a running app, so that the next request starts one with
    /// the current settings.
    fn restart(&mut self) {
        #[cfg(feature = "actix")]
        {
            self.actix = Arc::default();
        }
    }

    fn service(
        &self,
        index: usize,
    ) -> impl Service<
        Request<String>,
        Response = Response<String>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + use<> {
        let handler = self.handler.clone();
        self.layer
            .clone()
            .layer(tower::service_fn(move |req: Request<String>| {
                let handler = handler.clone();
                async move {
                    let session = req
                        .extensions()
                        .get::<Session>()
                        .cloned()
                        .expect("the layer adds a session");
                    let res = match handler(session, index).await {
                        Ok(body) => Response::new(body),
                        Err(e) => {
                            let mut res = Response::new(e.to_string());
                            *res.status_mut() = e.status();
                            res
                        }
                    };
                    Ok::<_, Infallible>(res)
                }
            }))
    }

    /// One request, with `cookie` (`name=value`) if given; the handler's
    /// index is 0.
    pub async fn send(&self, cookie: Option<&str>) -> TestReply {
        self.send_with(cookie, 0).await
    }

    /// One request with `cookie`, telling the handler `index`.
    pub async fn send_indexed(&self, cookie: &str, index: usize) -> TestReply {
        self.send_with(Some(cookie), index).await
    }

    async fn send_with(&self, cookie: Option<&str>, index: usize) -> TestReply {
        match self.front_end {
            FrontEnd::Tower => self.send_tower(cookie, index).await,
            #[cfg(feature = "actix")]
            FrontEnd::Actix => {
                self.actix
                    .get_or_init(|| ActixApp::start(self.layer.clone(), self.handler.clone()))
                    .send(cookie, index)
                    .await
            }
        }
    }

    async fn send_tower(&self, cookie: Option<&str>, index: usize) -> TestReply {
        let mut req = Request::new(String::new());
        if let Some(c) = cookie {
            req.headers_mut()
                .insert(http::header::COOKIE, c.parse().expect("cookie header"));
        }
        let res = self
            .service(index)
            .oneshot(req)
            .await
            .unwrap_or_else(|e: Infallible| match e {});
        let set_cookie = res
            .headers()
            .get(http::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        TestReply::new(res.status(), res.into_body(), set_cookie)
    }

    /// Sends one request without a cookie and returns the cookie of the
    /// session it created.
    ///
    /// # Errors
    ///
    /// The request failed or set no cookie.
    pub async fn start_session(&self) -> std::result::Result<String, String> {
        let res = self.send(None).await;
        ensure!(
            res.status == StatusCode::OK,
            "creating a session failed: {} {}",
            res.status,
            res.body
        );
        res.cookie.ok_or_else(|| "no session cookie was set".into())
    }
}

/// An app whose handler sets `key` to `value`: a request without a cookie
/// starts a session holding it.
pub(super) fn inserting<V>(
    front_end: FrontEnd,
    layer: SessionLayer,
    key: &'static str,
    value: V,
) -> TestApp
where
    V: Serialize + Clone + Send + Sync + 'static,
{
    TestApp::new(layer, move |s, _| {
        let value = value.clone();
        async move {
            s.insert(key, value).await?;
            Ok(String::new())
        }
    })
    .with_front_end(front_end)
}

/// An app whose handler answers the string stored under `k`, or nothing.
pub(super) fn reading_k(front_end: FrontEnd, layer: SessionLayer) -> TestApp {
    TestApp::new(layer, |s, _| async move {
        Ok(s.get::<String>("k").await?.unwrap_or_default())
    })
    .with_front_end(front_end)
}

/// Sends `n` requests with `cookie` at once, request `i` to
/// `apps[i % apps.len()]` telling its handler `i`, and returns the replies
/// in that order.
///
/// # Errors
///
/// A request task that panicked.
pub(super) async fn send_concurrently(
    apps: &[TestApp],
    cookie: &str,
    n: usize,
) -> std::result::Result<Vec<TestReply>, String> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let cookie = cookie.to_owned();
            tokio::spawn(async move { app.send_indexed(&cookie, i).await })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for task in tasks {
        replies.push(task.await.map_err(|e| e.to_string())?);
    }
    Ok(replies)
}
