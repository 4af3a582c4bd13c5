//! `SessionLayer` and the `SessionService` it builds.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{Config, SameSite};
use crate::session::{CookieAction, Incoming};
use crate::store::Backend;
use crate::{ClientStore, Id, Session, SessionStore};

/// Adds a [`Session`] to every request, backed by a [`SessionStore`].
///
/// The defaults suit most apps: cookie `id` on path `/`, `Secure`,
/// `HttpOnly`, `SameSite=Lax`, a browser-session cookie, 24 hours of idle
/// timeout and no absolute lifetime, store calls bounded by 3 seconds.
/// Every setting has a `with_*` builder; see the
/// [crate documentation](crate) for an example.
///
/// When the store fails or times out while the response is being finished,
/// the response is replaced by an empty `503 Service Unavailable` (with
/// `Retry-After: 1`); a session that keeps losing concurrent saves gives
/// `409 Conflict`, an oversized one `413 Payload Too Large`.
#[derive(Clone)]
pub struct SessionLayer {
    backend: Backend,
    config: Arc<Config>,
}

impl SessionLayer {
    /// A layer keeping sessions in `store`, with the default settings.
    pub fn new(store: impl SessionStore) -> Self {
        SessionLayer {
            backend: Backend::Server(Arc::new(store)),
            config: Arc::new(Config::default()),
        }
    }

    /// A layer keeping each session in its own cookie, sealed by `store`
    /// (for example `session_stores::CookieStore`), with the default
    /// settings. See [`ClientStore`] for what this trades away.
    pub fn client_side(store: impl ClientStore) -> Self {
        SessionLayer {
            backend: Backend::Client(Arc::new(store)),
            config: Arc::new(Config::default()),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The cookie's name (default `id`).
    pub fn with_cookie_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.config().cookie.name = name.into();
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn with_path(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.config().cookie.path = path.into();
        self
    }

    /// The cookie's `Domain` (default: none, so the cookie stays on the
    /// exact host).
    pub fn with_domain(mut self, domain: impl Into<Cow<'static, str>>) -> Self {
        self.config().cookie.domain = Some(domain.into());
        self
    }

    /// Whether the cookie is `Secure`, sent only over HTTPS (default
    /// `true`; turn off only for plain-HTTP development).
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.config().cookie.secure = secure;
        self
    }

    /// Whether the cookie is `HttpOnly`, hidden from scripts (default
    /// `true`).
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.config().cookie.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` (default [`SameSite::Lax`]).
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.config().cookie.same_site = same_site;
        self
    }

    /// A persistent cookie whose `Max-Age` follows the session's expiry
    /// (`true`), or a browser-session cookie that the browser drops when it
    /// closes (`false`, the default).
    pub fn with_persistent_cookie(mut self, persistent: bool) -> Self {
        self.config().cookie.persistent = persistent;
        self
    }

    /// Idle timeout: a session not used for this long expires (default 24
    /// hours; `None` for no idle timeout). Each save extends it, and
    /// read-only requests extend it through the store's `touch` (see
    /// [`with_touch_after`](Self::with_touch_after)).
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.config().idle_timeout = idle;
        self
    }

    /// Absolute lifetime: a session expires this long after it was created,
    /// however active (default `None`).
    pub fn with_absolute_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.config().absolute_lifetime = lifetime;
        self
    }

    /// A read-only request extends the idle deadline only if it was last
    /// extended at least this long ago (default: a quarter of the idle
    /// timeout), so reads do not write on every hit. `Duration::ZERO`
    /// extends on every request.
    pub fn with_touch_after(mut self, every: Duration) -> Self {
        self.config().touch_after = Some(every);
        self
    }

    /// Upper bound on each store call (default 3 s). A call that takes
    /// longer fails with [`Error::Timeout`](crate::Error::Timeout).
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.config().store_timeout = timeout;
        self
    }

    /// How many times a save is attempted when concurrent requests keep
    /// saving first (default 32), for [`Session::update`] and for the save
    /// at the end of a request.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.config().max_attempts = attempts.max(1);
        self
    }
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("backend", &self.backend)
            .field("config", &self.config)
            .finish()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`SessionLayer`]; see there.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    layer: SessionLayer,
}

impl<S> SessionService<S> {
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
            .field("layer", &self.layer)
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
        let config = self.layer.config.clone();
        let incoming = match &self.layer.backend {
            Backend::Server(_) => {
                session_cookie(req.headers(), &config.cookie.name).map(Incoming::Id)
            }
            Backend::Client(_) => {
                sealed_cookie(req.headers(), &config.cookie.name).map(Incoming::Sealed)
            }
        };
        let session = Session::new(self.layer.backend.clone(), config.clone(), incoming);
        req.extensions_mut().insert(session.clone());

        // The clone may not be ready; use the instance that was polled.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            match session.finish().await {
                Ok(None) => {}
                Ok(Some(action)) => {
                    if let Some(value) = set_cookie(&config, action) {
                        res.headers_mut().append(SET_COOKIE, value);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session could not be saved");
                    let mut failed = Response::new(ResBody::default());
                    *failed.status_mut() = e.status();
                    if e.status() == http::StatusCode::SERVICE_UNAVAILABLE {
                        failed
                            .headers_mut()
                            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                    }
                    res = failed;
                }
            }
            Ok(res)
        })
    }
}

/// The first well-formed session ID among the request's cookies named
/// `name`. Malformed values and non-UTF-8 headers are ignored, so they
/// never reach the store.
fn session_cookie(headers: &HeaderMap, name: &str) -> Option<Id> {
    cookies(headers)
        .filter(|c| c.name() == name)
        .find_map(|c| Id::parse(c.value()))
}

/// Longest sealed cookie value looked at; browsers keep about 4 KB.
const MAX_SEALED_LEN: usize = 8 * 1024;

/// The first non-empty cookie named `name`, for client-side stores to open.
fn sealed_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .find(|v| !v.is_empty() && v.len() <= MAX_SEALED_LEN)
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = cookie::Cookie<'_>> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
}

fn set_cookie(config: &Config, action: CookieAction) -> Option<HeaderValue> {
    let settings = &config.cookie;
    let (value, max_age) = match action {
        CookieAction::Set { value, max_age } => (value, max_age),
        CookieAction::Remove => (String::new(), Some(Duration::ZERO)),
    };
    let mut c = cookie::Cookie::build((settings.name.clone(), value))
        .path(settings.path.clone())
        .secure(settings.secure)
        .http_only(settings.http_only)
        .same_site(match settings.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        });
    if let Some(domain) = &settings.domain {
        c = c.domain(domain.clone());
    }
    if let Some(age) = max_age {
        let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        c = c.max_age(time::Duration::seconds(secs));
    }
    HeaderValue::from_str(&c.build().to_string())
        .inspect_err(|e| tracing::error!(error = %e, "session cookie is not a valid header"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_valid_cookie() {
        let id = Id::random();
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("other=1; id=garbage"));
        headers.append(COOKIE, HeaderValue::from_bytes(b"id=\xff\xfe").unwrap());
        headers.append(
            COOKIE,
            HeaderValue::from_str(&format!("x=2; id={id}")).unwrap(),
        );
        assert_eq!(session_cookie(&headers, "id"), Some(id.clone()));
        assert_eq!(session_cookie(&headers, "sid"), None);
        assert_eq!(session_cookie(&HeaderMap::new(), "id"), None);
    }

    #[test]
    fn cookie_attributes_follow_the_config() {
        let mut config = Config::default();
        let id = Id::random();
        let v = set_cookie(
            &config,
            CookieAction::Set {
                value: id.to_string(),
                max_age: None,
            },
        )
        .unwrap();
        let v = v.to_str().unwrap();
        assert!(v.starts_with(&format!("id={id}")), "{v}");
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(v.contains(attr), "{attr} missing in {v}");
        }
        assert!(!v.contains("Max-Age"), "{v}");

        config.cookie.secure = false;
        config.cookie.http_only = false;
        config.cookie.same_site = SameSite::Strict;
        config.cookie.domain = Some("example.com".into());
        config.cookie.name = "sid".into();
        let v = set_cookie(
            &config,
            CookieAction::Set {
                value: id.to_string(),
                max_age: Some(Duration::from_secs(60)),
            },
        )
        .unwrap();
        let v = v.to_str().unwrap();
        assert!(v.starts_with("sid="), "{v}");
        assert!(!v.contains("HttpOnly") && !v.contains("Secure"), "{v}");
        assert!(
            v.contains("SameSite=Strict") && v.contains("Domain=example.com"),
            "{v}"
        );
        assert!(v.contains("Max-Age=60"), "{v}");

        let v = set_cookie(&config, CookieAction::Remove).unwrap();
        assert!(v.to_str().unwrap().contains("Max-Age=0"));
    }
}
