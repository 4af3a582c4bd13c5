//! Passwords, CSRF tokens, the log-in rate limiter, security headers and
//! the client's address.
//!
//! * **Passwords** are hashed with Argon2id (memory-hard; the `argon2`
//!   crate's defaults: 19 MiB, 2 passes) on the blocking thread pool. Log-ins
//!   for unknown accounts verify against a dummy hash, so they take as long
//!   as real ones.
//! * **CSRF**: every HTML form carries the session's random token, checked
//!   on `POST`. The JSON API accepts only `Content-Type: application/json`
//!   (which a cross-site form cannot send and a cross-site script cannot
//!   send without a CORS preflight the shop never answers), and the session
//!   cookie is `SameSite=Lax`.
//! * **Rate limit**: failed log-ins are counted per account and per client
//!   address in fixed 15-minute windows, in this process. Behind a load
//!   balancer each instance counts on its own, so the fleet allows up to
//!   N times the limit; a shared counter (Redis `INCR` with `EXPIRE`) would
//!   make it exact.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use session_core::Session;
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppError;

/// Session key of the CSRF token.
pub(crate) const CSRF_KEY: &str = "csrf";

/// A fresh random token: 32 hex-encoded bytes from the OS.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session's CSRF token, created on first use.
pub(crate) async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await? {
        return Ok(token);
    }
    // Atomic: two first page views at once agree on one token.
    Ok(session
        .update(CSRF_KEY, |token: Option<String>| {
            token.unwrap_or_else(random_token)
        })
        .await?)
}

/// Checks a submitted form's token against the session's.
pub(crate) async fn check_csrf(session: &Session, submitted: &str) -> Result<(), AppError> {
    match session.get::<String>(CSRF_KEY).await? {
        Some(token) if constant_time_eq(token.as_bytes(), submitted.as_bytes()) => Ok(()),
        _ => Err(AppError::Csrf),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a password with Argon2id, off the async threads.
pub(crate) async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(e.to_string()))
}

/// Whether `password` matches `hash`; with no hash (an unknown account) it
/// verifies against a dummy hash so the answer takes as long.
pub(crate) async fn verify_password(password: String, hash: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    Argon2::default()
                        .hash_password(b"not a password of anyone")
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let matches = PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && matches
    })
    .await
    .unwrap_or(false)
}

/// Failed log-ins allowed per account in one window.
pub const LOGIN_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed log-ins allowed per client address in one window.
pub const LOGIN_FAILURES_PER_ADDRESS: u32 = 50;
/// The counting window.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Counts failed log-ins per account and per address; see the
/// [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<String, Window>,
    /// The size at which ended windows are dropped next: twice what was
    /// left after the last pruning (at least 100 000), so that many live
    /// windows cost amortised O(1) per failure, not a scan each.
    prune_at: usize,
}

impl LoginLimiter {
    fn keys(account: &str, ip: Option<IpAddr>) -> [(Option<String>, u32); 2] {
        [
            (
                Some(format!("account:{account}")),
                LOGIN_FAILURES_PER_ACCOUNT,
            ),
            (
                ip.map(|ip| format!("address:{ip}")),
                LOGIN_FAILURES_PER_ADDRESS,
            ),
        ]
    }

    /// `Err(seconds to wait)` when the account or the address used up its
    /// failures.
    pub(crate) fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (key, limit) in Self::keys(account, ip) {
            let Some(window) = key.and_then(|k| windows.by_key.get(&k).copied()) else {
                continue;
            };
            let left = LOGIN_WINDOW.saturating_sub(now.duration_since(window.started));
            if window.failures >= limit && !left.is_zero() {
                return Err(left.as_secs().max(1));
            }
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub(crate) fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if windows.by_key.len() >= windows.prune_at.max(100_000) {
            windows
                .by_key
                .retain(|_, w| now.duration_since(w.started) < LOGIN_WINDOW);
            windows.prune_at = windows.by_key.len() * 2;
        }
        for key in Self::keys(account, ip).into_iter().filter_map(|(k, _)| k) {
            let window = windows.by_key.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= LOGIN_WINDOW {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }

    /// Forgets the account's failures after a successful log-in.
    pub(crate) fn succeeded(&self, account: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.by_key.remove(&format!("account:{account}"));
    }
}

/// The address of the client's connection (the load balancer's, behind
/// one), when the server recorded it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// The Content-Security-Policy of every response: the pages use no
/// script, no inline style, and submit forms to the shop only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Layers adding the security headers to every response that lacks them.
pub(crate) fn header_layers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    [
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        set(header::X_FRAME_OPTIONS, "DENY"),
        set(header::REFERRER_POLICY, "same-origin"),
        set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ]
}

/// Bodies up to this size that declare more than [`MAX_BODY`] are read
/// and thrown away before the 413 goes out.
///
/// [`MAX_BODY`]: super::MAX_BODY
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// How long the shop keeps reading an oversized body it drains.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many oversized bodies are drained at once; beyond that the
/// 413 goes out at once.
static DRAINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

/// Answers 413 to a body whose `Content-Length` is over
/// [`MAX_BODY`](super::MAX_BODY), after reading it when it is no larger
/// than [`DRAIN_LIMIT`].
///
/// A server that answers early and closes with the body still unread
/// makes its kernel send a reset, and a client still writing then often
/// loses the answer and sees a broken connection instead of the 413.
/// Reading a bounded body first lets the answer arrive; anything larger,
/// slower than [`DRAIN_TIMEOUT`], sent with `Expect: 100-continue`, or
/// beyond [`DRAINS`] concurrent drains is cut off. Bodies without a length
/// are limited while they are read (`RequestBodyLimitLayer`).
pub(crate) async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > super::MAX_BODY as u64 => {
            // A client that waits for `100 Continue` has sent nothing yet:
            // reading would invite the upload only to refuse it.
            let expects_continue = request.headers().contains_key(header::EXPECT);
            let permit = DRAINS.try_acquire();
            if length <= DRAIN_LIMIT && !expects_continue && permit.is_ok() {
                let mut body = request.into_body();
                let drain = async { while let Some(Ok(_)) = body.frame().await {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
            }
            (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_an_account_after_its_failures() {
        let limiter = LoginLimiter::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT {
            assert!(limiter.check("a@x", ip).is_ok());
            limiter.failed("a@x", ip);
        }
        assert!(limiter.check("a@x", ip).is_err());
        assert!(limiter.check("b@x", ip).is_ok(), "other accounts are free");
        limiter.succeeded("a@x");
        assert!(limiter.check("a@x", ip).is_ok());
    }

    #[test]
    fn limiter_blocks_an_address_after_its_failures_over_many_accounts() {
        let limiter = LoginLimiter::default();
        let ip = Some(IpAddr::from([192, 0, 2, 7]));
        for n in 0..LOGIN_FAILURES_PER_ADDRESS {
            // A different account each time: no account reaches its limit.
            let account = format!("user{n}@x");
            assert!(limiter.check(&account, ip).is_ok(), "attempt {n}");
            limiter.failed(&account, ip);
        }
        let wait = limiter.check("fresh@x", ip).unwrap_err();
        assert!(wait > 0 && wait <= LOGIN_WINDOW.as_secs(), "{wait}");
        limiter.succeeded("user0@x");
        assert!(
            limiter.check("fresh@x", ip).is_err(),
            "a success does not reset the address"
        );
        let other = Some(IpAddr::from([192, 0, 2, 8]));
        assert!(
            limiter.check("fresh@x", other).is_ok(),
            "other addresses are free"
        );
        assert!(
            limiter.check("fresh@x", None).is_ok(),
            "no address: accounts only"
        );
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..31]));
    }
}
