//! `SessionInfo`: one live session of a user, as listings show it.

use time::OffsetDateTime;

use super::{Device, SessionHandle};

/// One live session of a user, as
/// [`Session::user_sessions`](crate::Session::user_sessions) and
/// [`UserSessions::list`](crate::UserSessions::list) show it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Names the session for [`Session::revoke_session`](crate::Session::revoke_session);
    /// not its ID.
    pub handle: SessionHandle,
    /// When the session was created (kept across ID rotation).
    pub created_at: OffsetDateTime,
    /// When the session was last used, as precisely as the layer writes
    /// it: every save, and every extension of its idle expiry (at most
    /// once per [`with_touch_after`](crate::SessionLayer::with_touch_after)).
    pub last_seen: OffsetDateTime,
    /// What the app recorded at log-in.
    pub device: Device,
    /// Whether this is the session of the request that asked.
    pub current: bool,
}
