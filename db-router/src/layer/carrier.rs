//! How causal tokens travel from one request of a user to the next.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderName, HeaderValue, request, response};

use crate::error::{Error, Result};
use crate::token::CausalToken;

/// Carries a user's [`CausalToken`] between requests: read before the
/// handler runs, written after a request that wrote.
///
/// [`CookieCarrier`] (the default) and [`HeaderCarrier`] ship with this
/// crate. A session-backed carrier fits the same shape: take the session
/// handle out of the request extensions in [`context`](Self::context),
/// `get` the token's string form from it in [`load`](Self::load), and
/// `insert` the new one in [`store`](Self::store). Wrap the session's errors
/// with [`Error::carrier`].
///
/// ```
/// use db_router::{CausalToken, Result, TokenCarrier};
///
/// /// Keeps the token in a request extension set by an earlier layer.
/// #[derive(Clone)]
/// struct FromExtension;
///
/// #[derive(Clone)]
/// struct UserToken(String);
///
/// impl TokenCarrier for FromExtension {
///     type Context = ();
///
///     fn context(&self, _request: &http::request::Parts) {}
///
///     async fn load(&self, _cx: &(), request: &http::request::Parts) -> Result<Option<CausalToken>> {
///         Ok(request
///             .extensions
///             .get::<UserToken>()
///             .and_then(|t| t.0.parse().ok()))
///     }
///
///     async fn store(&self, _cx: (), token: &CausalToken, response: &mut http::response::Parts) -> Result<()> {
///         response.extensions.insert(UserToken(token.to_string()));
///         Ok(())
///     }
/// }
/// ```
pub trait TokenCarrier: Clone + Send + Sync + 'static {
    /// What [`store`](Self::store) needs from the request, captured before
    /// the request moves on to the handler (for example a session handle).
    type Context: Send + Sync + 'static;

    /// Captures the context from the incoming request.
    fn context(&self, request: &request::Parts) -> Self::Context;

    /// Reads the token from the incoming request.
    ///
    /// A missing or malformed token is `Ok(None)`. An error means the
    /// carrier itself failed (say, the session store is down): reads of
    /// that request then go to the primary, as it is unknown whether the
    /// user wrote recently.
    fn load(
        &self,
        cx: &Self::Context,
        request: &request::Parts,
    ) -> impl Future<Output = Result<Option<CausalToken>>> + Send;

    /// Records a new token after a request that wrote.
    fn store(
        &self,
        cx: Self::Context,
        token: &CausalToken,
        response: &mut response::Parts,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// A token's string form as a carrier found it (`carried_in`: `cookie`,
/// `header`, `session`): a malformed one is no token, logged at debug
/// level.
pub(crate) fn parse_carried(text: &str, carried_in: &'static str) -> Option<CausalToken> {
    match CausalToken::parse(text) {
        Ok(token) => Some(token),
        Err(error) => {
            tracing::debug!(%error, carried_in, "ignoring a malformed causal token");
            None
        }
    }
}

/// Carries the token in a small cookie (the default carrier).
///
/// The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/` and short-lived
/// (`Max-Age`, 60 s by default): once it expires, every replica within the
/// lag limit has long caught up.
#[derive(Clone, Debug)]
pub struct CookieCarrier {
    name: Cow<'static, str>,
    path: Cow<'static, str>,
    max_age: Duration,
    secure: bool,
}

impl Default for CookieCarrier {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieCarrier {
    /// The default cookie: `db_causal`.
    pub fn new() -> Self {
        Self {
            name: Cow::Borrowed("db_causal"),
            path: Cow::Borrowed("/"),
            max_age: Duration::from_secs(60),
            secure: false,
        }
    }

    /// The cookie's name.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The cookie's path. Default: `/`.
    pub fn with_path(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.path = path.into();
        self
    }

    /// How long the browser keeps the cookie. Default: 60 s.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Adds the `Secure` attribute (HTTPS only). Default: off.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The `Set-Cookie` value for `token`.
    pub fn set_cookie_value(&self, token: &CausalToken) -> String {
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        cookie::Cookie::build((self.name.clone(), token.to_string()))
            .path(self.path.clone())
            .max_age(cookie::time::Duration::seconds(max_age))
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(self.secure)
            .build()
            .to_string()
    }

    /// The token in a request's `Cookie` headers, if a valid one is there.
    pub fn token_from_headers(&self, headers: &http::HeaderMap) -> Option<CausalToken> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(|c| c.ok())
            .filter(|c| c.name() == self.name)
            .find_map(|c| parse_carried(c.value(), "cookie"))
    }
}

impl TokenCarrier for CookieCarrier {
    type Context = ();

    fn context(&self, _request: &request::Parts) -> Self::Context {}

    async fn load(&self, _cx: &(), request: &request::Parts) -> Result<Option<CausalToken>> {
        Ok(self.token_from_headers(&request.headers))
    }

    async fn store(
        &self,
        _cx: (),
        token: &CausalToken,
        response: &mut response::Parts,
    ) -> Result<()> {
        let value = HeaderValue::try_from(self.set_cookie_value(token)).map_err(Error::carrier)?;
        response.headers.append(SET_COOKIE, value);
        Ok(())
    }
}

/// Carries the token in a request and response header, for API clients
/// that echo it back (default name: `x-db-causal-token`).
#[derive(Clone, Debug)]
pub struct HeaderCarrier {
    name: HeaderName,
}

impl Default for HeaderCarrier {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCarrier {
    /// The default header, `x-db-causal-token`.
    pub fn new() -> Self {
        Self {
            name: HeaderName::from_static("x-db-causal-token"),
        }
    }

    /// Another header name.
    pub fn with_name(mut self, name: HeaderName) -> Self {
        self.name = name;
        self
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

impl TokenCarrier for HeaderCarrier {
    type Context = ();

    fn context(&self, _request: &request::Parts) -> Self::Context {}

    async fn load(&self, _cx: &(), request: &request::Parts) -> Result<Option<CausalToken>> {
        let Some(value) = request.headers.get(&self.name) else {
            return Ok(None);
        };
        // A value that is not visible ASCII is no token either: the lossy
        // text holds a character no token has.
        let text = String::from_utf8_lossy(value.as_bytes());
        Ok(parse_carried(&text, "header"))
    }

    async fn store(
        &self,
        _cx: (),
        token: &CausalToken,
        response: &mut response::Parts,
    ) -> Result<()> {
        let value = HeaderValue::try_from(token.to_string()).map_err(Error::carrier)?;
        response.headers.insert(self.name.clone(), value);
        Ok(())
    }
}
