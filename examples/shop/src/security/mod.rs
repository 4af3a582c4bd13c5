//! Passwords, CSRF tokens, the log-in rate limiter, security headers, the
//! body limit, the client's address and its device, one module each.
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
//! * **Rate limit**: failed log-ins (and failed password changes, which
//!   check the current password the same way) are counted per account and per client
//!   address in fixed 15-minute windows, in this process. Behind a load
//!   balancer each instance counts on its own, so the fleet allows up to
//!   N times the limit; a shared counter (Redis `INCR` with `EXPIRE`) would
//!   make it exact.
//! * **Bodies** over [`MAX_BODY`] get `413`; see [`refuse_oversized`].

mod body_limit;
mod client_device;
mod client_ip;
mod csrf;
mod headers;
mod login_limiter;
mod passwords;

pub(crate) use body_limit::refuse_oversized;
pub use body_limit::{MAX_BODY, Oversized, TOO_LARGE, oversized};
pub(crate) use client_device::ClientDevice;
pub(crate) use client_ip::ClientIp;
pub(crate) use csrf::{CSRF_KEY, check_csrf, csrf_token, random_token};
pub use headers::CONTENT_SECURITY_POLICY;
pub(crate) use headers::header_layers;
pub(crate) use login_limiter::LoginLimiter;
pub use login_limiter::{LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW};
pub(crate) use passwords::{hash_password, verify_password};
