//! `Binding`: the user a stored session belongs to.

use time::OffsetDateTime;

use super::clock::truncate_millis;
use crate::{Device, SessionHandle};

/// The user a session is bound to
/// ([`Session::bind_user`](crate::Session::bind_user)), kept in its
/// [`Record`](super::Record) and encoded with it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Binding {
    /// The user, as the app named it.
    pub user: String,
    /// The session's handle in the user's listings.
    pub handle: SessionHandle,
    /// What the app recorded about the device at log-in.
    pub device: Device,
    /// When the session was last saved.
    pub last_seen: OffsetDateTime,
}

impl Binding {
    /// A binding of a session to `user`.
    pub fn new(
        user: impl Into<String>,
        handle: SessionHandle,
        device: Device,
        last_seen: OffsetDateTime,
    ) -> Self {
        Binding {
            user: user.into(),
            handle,
            device,
            last_seen: truncate_millis(last_seen),
        }
    }
}
