//! A user's session index as a store keeps it: opaque bytes under a key
//! derived from the user, versioned for compare-and-set.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::clock::truncate_millis;

/// The index of one user's sessions, as a [`SessionStore`](super::SessionStore)
/// keeps it.
///
/// session-core writes and reads `bytes` (which sessions, their handles
/// and lifetimes); a store keeps them unchanged beside `version` (for
/// compare-and-set, like a record's) and `expires_at` (when the whole
/// index may be forgotten: by then every session it names has ended).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserIndex {
    /// Incremented by every successful save; a new index has version 1.
    pub version: u64,
    /// When the store may forget the index. `None` keeps it until deleted.
    pub expires_at: Option<OffsetDateTime>,
    /// The entries, encoded by session-core.
    pub bytes: Vec<u8>,
}

impl UserIndex {
    /// An index as stored.
    pub fn new(version: u64, expires_at: Option<OffsetDateTime>, bytes: Vec<u8>) -> Self {
        UserIndex {
            version,
            expires_at: expires_at.map(truncate_millis),
            bytes,
        }
    }

    /// Whether the index's expiry time has passed at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The key form of a user ID: 43 URL-safe characters (`A–Z a–z 0–9 - _`),
/// the unpadded base64 of its SHA-256, whatever the user ID holds (spaces,
/// braces, any length).
///
/// Stores name a user's index with it, so the user ID itself never has to
/// fit a backend's key rules (Memcached's 250 bytes without spaces, Redis
/// Cluster's `{hash tags}`).
///
/// ```
/// let key = session_core::store::user_key("alice@example.com");
/// assert_eq!(key.len(), 43);
/// assert_ne!(key, session_core::store::user_key("bob@example.com"));
/// ```
pub fn user_key(user: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(user.as_bytes()))
}
