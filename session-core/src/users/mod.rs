//! Sessions bound to users: listing a user's sessions and revoking them.
//!
//! [`Session::bind_user`](crate::Session::bind_user) ties a session to a
//! user at log-in; the session is then listed among the user's sessions
//! ([`SessionInfo`], named by a [`SessionHandle`]) and can be revoked from
//! any of them, or from outside any request through [`UserSessions`].

mod device;
pub(crate) mod entries;
mod handle;
mod info;
mod user_sessions;

pub use device::Device;
pub use handle::{ParseHandleError, SessionHandle};
pub use info::SessionInfo;
pub use user_sessions::UserSessions;
pub(crate) use user_sessions::index_moving;
