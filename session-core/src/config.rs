//! Settings shared by the layer and the session handles it creates.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::shared_values::{self, SharedValues};
use crate::store::Record;

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only with same-site requests. Breaks the first visit from a link
    /// on another site (the user looks logged out).
    Strict,
    /// Sent with same-site requests and top-level navigations from other
    /// sites (the default): safe against cross-site form posts, friendly to
    /// links.
    Lax,
    /// Sent with every request; requires `Secure`.
    None,
}

#[derive(Clone, Debug)]
pub(crate) struct CookieSettings {
    pub(crate) name: Cow<'static, str>,
    pub(crate) path: Cow<'static, str>,
    pub(crate) domain: Option<Cow<'static, str>>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) persistent: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) cookie: CookieSettings,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) absolute_lifetime: Option<Duration>,
    pub(crate) touch_after: Option<Duration>,
    pub(crate) store_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) max_sessions_per_user: usize,
    /// Decoded values kept across requests ([`Session::get_shared`](crate::Session::get_shared)).
    pub(crate) shared_values: Arc<SharedValues>,
}

/// The default cap on a user's sessions.
pub(crate) const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;

/// Browsers keep a cookie at most about 400 days.
const MAX_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

impl Default for Config {
    fn default() -> Self {
        Config {
            cookie: CookieSettings {
                name: Cow::Borrowed("id"),
                path: Cow::Borrowed("/"),
                domain: None,
                secure: true,
                http_only: true,
                same_site: SameSite::Lax,
                persistent: false,
            },
            idle_timeout: Some(Duration::from_secs(24 * 3600)),
            absolute_lifetime: None,
            touch_after: None,
            store_timeout: Duration::from_secs(3),
            max_attempts: 32,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            shared_values: Arc::new(SharedValues::new(shared_values::DEFAULT_MAX_BYTES)),
        }
    }
}

impl Config {
    /// When a session created at `created_at` and active at `now` expires.
    pub(crate) fn deadline(
        &self,
        now: OffsetDateTime,
        created_at: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let idle = self.idle_timeout.map(|d| now + d);
        let absolute = self.absolute_lifetime.map(|d| created_at + d);
        match (idle, absolute) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a loaded record may still be used, under the layer's own
    /// rules (not only the store's TTL).
    pub(crate) fn is_live(&self, record: &Record, now: OffsetDateTime) -> bool {
        !record.is_expired(now)
            && self
                .absolute_lifetime
                .is_none_or(|d| record.created_at + d > now)
    }

    /// How long after its last extension an idle deadline is extended again
    /// by a read-only request.
    pub(crate) fn touch_after(&self) -> Option<Duration> {
        let idle = self.idle_timeout?;
        Some(self.touch_after.unwrap_or(idle / 4).min(idle))
    }

    /// `Max-Age` of a persistent cookie for a record expiring at
    /// `expires_at`.
    pub(crate) fn max_age(
        &self,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Duration {
        match expires_at {
            Some(at) => Duration::try_from(at - now)
                .unwrap_or_default()
                .min(MAX_COOKIE_AGE),
            None => MAX_COOKIE_AGE,
        }
    }
}
