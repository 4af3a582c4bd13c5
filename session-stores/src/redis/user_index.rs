//! The hash that holds a user's session index: its key, reading it, and
//! turning its fields back into a [`UserIndex`].
//!
//! Its fields are `v` (version), `e` (expiry, ms since the Unix epoch) and
//! `d` (the index as session-core encodes it), written by the scripts
//! `lua/index_save.lua` and `lua/index_delete.lua`.

use redis::Cmd;
use session_core::Result;
use session_core::store::{UserIndex, from_unix_millis, unix_millis};
use time::OffsetDateTime;

use super::session_value::number;
use crate::stored::malformed;

/// The key of `user`'s index under `prefix`: `<prefix>user:{<user key>}`,
/// the user key being [`session_core::store::user_key`]. The braces are a
/// Cluster hash tag, so the whole index lives in one slot.
pub(super) fn key(prefix: &str, user: &str) -> String {
    format!("{prefix}user:{{{}}}", session_core::store::user_key(user))
}

/// `HMGET key v e d`, never from the near cache.
pub(super) fn read(key: &str) -> Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(key).arg("v").arg("e").arg("d");
    cmd
}

/// The index in the fields `v`, `e` and `d`, or `None` if there is none or
/// it has expired at `now`.
pub(super) fn decode(
    fields: [Option<Vec<u8>>; 3],
    now: OffsetDateTime,
) -> Result<Option<UserIndex>> {
    let [v, e, d] = fields;
    let (Some(v), Some(d)) = (v, d) else {
        return Ok(None);
    };
    let expires_ms = e
        .as_deref()
        .map(|raw| number("user index expiry", raw))
        .transpose()?;
    if expires_ms.is_some_and(|ms| ms <= unix_millis(now)) {
        return Ok(None);
    }
    let version = u64::try_from(number("user index version", &v)?)
        .map_err(|_| malformed("user index version is negative"))?;
    let expires_at = expires_ms
        .map(|ms| from_unix_millis(ms).ok_or_else(|| malformed("user index expiry out of range")))
        .transpose()?;
    Ok(Some(UserIndex::new(version, expires_at, d)))
}
