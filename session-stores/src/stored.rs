//! Reading back a session that a server-side store wrote: the checks that
//! the Redis and DynamoDB stores share once they have taken the parts of a
//! stored record (version, expiry, encoded data) out of their own format.

use session_core::store::{DecodeError, Record, unix_millis};
use session_core::{Error, Id, Result};
use time::OffsetDateTime;

/// [`Error::Decode`] for a stored session that is not as the store writes
/// it; `what` says what is wrong.
pub(crate) fn malformed(what: impl Into<String>) -> Error {
    Error::Decode(DecodeError::Malformed(what.into()))
}

/// The record stored for `id`, or `None` if it has expired at `now`.
///
/// `expires_ms` is the stored expiry in milliseconds since the Unix epoch.
/// `version` and `data` read the rest of the stored parts; they run only
/// for a record that is still live, so an expired record reads as absent
/// even when the rest of it is damaged.
pub(crate) fn decode_unexpired<'a>(
    id: &Id,
    expires_ms: Option<i64>,
    now: OffsetDateTime,
    version: impl FnOnce() -> Result<i64>,
    data: impl FnOnce() -> Result<&'a [u8]>,
) -> Result<Option<Record>> {
    if expires_ms.is_some_and(|ms| ms <= unix_millis(now)) {
        return Ok(None);
    }
    let version = version()?;
    let data = data()?;
    let record = Record::decode_with_metadata(id.clone(), data, version, expires_ms)?;
    Ok(Some(record))
}
