//! `SessionLayer`: the session settings, and the Tower layer that applies
//! them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::config::{Config, SameSite};
use crate::lifecycle::Sessions;
use crate::migration::Migration;
use crate::service::SessionService;
use crate::shared_values::SharedValues;
use crate::store::{ClientStore, SessionStore};
use crate::users::UserSessions;

/// Adds a [`Session`](crate::Session) to every request, backed by a [`SessionStore`].
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
#[derive(Clone, Debug)]
pub struct SessionLayer {
    sessions: Sessions,
}

impl SessionLayer {
    /// A layer keeping sessions in `store`, with the default settings.
    pub fn new(store: impl SessionStore) -> Self {
        SessionLayer {
            sessions: Sessions::on_server(Arc::new(store)),
        }
    }

    /// A layer keeping each session in its own cookie, sealed by `store`
    /// (for example `session_stores::CookieStore`), with the default
    /// settings. See [`ClientStore`] for what this trades away.
    pub fn client_side(store: impl ClientStore) -> Self {
        SessionLayer {
            sessions: Sessions::on_client(Arc::new(store)),
        }
    }

    /// Where the sessions are kept and their settings, for the front ends.
    #[cfg(feature = "actix")]
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    fn config(&mut self) -> &mut Config {
        self.sessions.config_mut()
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

    /// Moves sessions into this layer's store from the store the fleet
    /// used before, without logging anyone out: sessions are also read
    /// from `migration`'s store and, in its second phase, moved out of it
    /// as they are used. See [`Migration`] for the phases and
    /// `docs/store-migration.md` for the runbook.
    ///
    /// ```
    /// use session_core::{Migration, MigrationPhase, SessionLayer};
    /// use session_stores::MemoryStore;
    ///
    /// # let (old_store, new_store) = (MemoryStore::default(), MemoryStore::default());
    /// let layer = SessionLayer::new(new_store)
    ///     .with_migration(Migration::from_store(old_store).with_phase(MigrationPhase::Move));
    /// ```
    ///
    /// # Panics
    ///
    /// On a layer built by [`client_side`](Self::client_side): sessions
    /// move into a server-side store only.
    pub fn with_migration(mut self, migration: Migration) -> Self {
        assert!(
            self.sessions.migrate(migration),
            "SessionLayer::with_migration needs a layer built by SessionLayer::new (a server-side store)"
        );
        self
    }

    /// How many times a save is attempted when concurrent requests keep
    /// saving first (default 32), for [`Session::update`](crate::Session::update) and for the save
    /// at the end of a request.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.config().max_attempts = attempts.max(1);
        self
    }

    /// The most sessions one user may have at once (default 100). When a
    /// log-in ([`Session::bind_user`](crate::Session::bind_user)) makes a
    /// user's live sessions exceed it, the oldest of them (by creation
    /// time, never the one logging in) are revoked. `0` is taken as `1`.
    pub fn with_max_sessions_per_user(mut self, max: usize) -> Self {
        self.config().max_sessions_per_user = max.max(1);
        self
    }

    /// How much [`Session::get_shared`](crate::Session::get_shared) keeps
    /// decoded across requests, counted in the values' encoded size plus
    /// about 200 bytes per value for its key, session ID and bookkeeping
    /// (default 8 MiB; decoded values usually take one to four times
    /// their encoded size). When it is full, other sessions' values make room, in no
    /// particular order. `0` keeps nothing: every `get_shared` decodes.
    ///
    /// A kept value is used only while the stored bytes it was decoded
    /// from are unchanged, so it is never stale, whichever instance wrote
    /// last.
    ///
    /// ```
    /// use session_core::SessionLayer;
    /// use session_stores::MemoryStore;
    ///
    /// let layer = SessionLayer::new(MemoryStore::default()).with_shared_values(64 << 20);
    /// ```
    pub fn with_shared_values(mut self, max_bytes: usize) -> Self {
        self.config().shared_values = Arc::new(SharedValues::new(max_bytes));
        self
    }

    /// Whether this layer's store can list and revoke a user's sessions
    /// (the per-user session index). `false` with a client-side store,
    /// whose sessions live only in their cookies, and with a store that
    /// does not implement the index; the calls then fail with
    /// [`Error::Unsupported`](crate::Error::Unsupported). Apps use it to
    /// hide a "your sessions" page.
    pub fn supports_user_sessions(&self) -> bool {
        self.sessions.user_sessions().supported()
    }

    /// Lists and revokes any user's sessions outside a request (admin
    /// tools, password resets confirmed by e-mail), with this layer's
    /// store and settings.
    pub fn user_sessions(&self) -> UserSessions {
        self.sessions.user_sessions()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.sessions.clone())
    }
}
