//! The string that holds one session: reading it, and turning it back
//! into a [`Record`].
//!
//! It is `<version>:<expiry>:<token>:<record>`: the version in decimal, the
//! expiry in milliseconds since the Unix epoch (empty for none), the last
//! write's token (which has no `:`), then the encoded record, whose bytes
//! may hold anything. The scripts in [`scripts`](super::scripts) write it.

use redis::{Cmd, CommandCacheConfig};
use session_core::store::Record;
use session_core::{Id, Result};
use time::OffsetDateTime;

use crate::stored::{decode_unexpired, malformed};

/// `GET key`; served by the near cache when `cached`.
pub(super) fn read(key: &str, cached: bool) -> Cmd {
    // Sized up front: two arguments, and their bytes.
    let mut cmd = Cmd::with_capacity(2, key.len() + 3);
    cmd.arg("GET").arg(key);
    if cached {
        cmd.set_cache_config(CommandCacheConfig::new());
    }
    cmd
}

/// The string stored for a session of `version` with expiry `expires`
/// (milliseconds since the Unix epoch, empty for none), written with
/// `token`: `record`, the encoded record, behind its header.
pub(super) fn encode(version: &str, expires: &str, token: &str, record: &[u8]) -> Vec<u8> {
    let header = version.len() + expires.len() + token.len() + 3;
    let mut value = Vec::with_capacity(header + record.len());
    for part in [version, expires, token] {
        value.extend_from_slice(part.as_bytes());
        value.push(b':');
    }
    value.extend_from_slice(record);
    value
}

/// The parts of a stored session, borrowed from its string.
struct Parts<'a> {
    version: &'a [u8],
    expiry: &'a [u8],
    record: &'a [u8],
}

fn split(value: &[u8]) -> Option<Parts<'_>> {
    let mut parts = value.splitn(4, |&b| b == b':');
    let version = parts.next()?;
    let expiry = parts.next()?;
    let _token = parts.next()?;
    let record = parts.next()?;
    Some(Parts {
        version,
        expiry,
        record,
    })
}

/// Builds a record from the string stored for `id`, or `None` if there is
/// none or it has expired at `now`.
pub(super) fn decode(
    id: &Id,
    value: Option<Vec<u8>>,
    now: OffsetDateTime,
) -> Result<Option<Record>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parts = split(&value)
        .ok_or_else(|| malformed("a stored session lacks its version, expiry or token"))?;
    let expires_ms = match parts.expiry {
        [] => None,
        raw => Some(number("session expiry", raw)?),
    };
    decode_unexpired(
        id,
        expires_ms,
        now,
        || number("session version", parts.version),
        || Ok(parts.record),
    )
}

/// A decimal number stored in a session or a user's index; `name` says
/// which in the error.
pub(super) fn number(name: &str, raw: &[u8]) -> Result<i64> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| malformed(format!("the stored {name} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Error;
    use session_core::store::{Data, now, unix_millis};

    fn sample(expires_at: Option<OffsetDateTime>) -> Record {
        let mut data = Data::new();
        data.insert("k".into(), serde_json::json!("v").into());
        let mut r = Record::new(Id::random(), data, now(), expires_at);
        r.version = 7;
        r
    }

    fn stored(version: &str, expiry: &str, record: &[u8]) -> Option<Vec<u8>> {
        Some(encode(version, expiry, "token.1", record))
    }

    #[test]
    fn round_trips_and_expiry_comes_from_the_header() {
        let r = sample(Some(now() + time::Duration::hours(1)));
        let later = now() + time::Duration::hours(2);
        let value = stored("7", &unix_millis(later).to_string(), &r.encode().unwrap());
        let loaded = decode(&r.id, value, now()).unwrap().unwrap();
        assert_eq!(loaded.expires_at, Some(later));
        assert_eq!((loaded.version, &loaded.data), (r.version, &r.data));
    }

    #[test]
    fn a_record_holding_colons_and_no_expiry_round_trips() {
        let mut data = Data::new();
        data.insert("a:b".into(), serde_json::json!("c:d:e").into());
        let mut r = Record::new(Id::random(), data, now(), None);
        r.version = 3;
        let loaded = decode(&r.id, stored("3", "", &r.encode().unwrap()), now())
            .unwrap()
            .unwrap();
        assert_eq!(loaded.expires_at, None);
        assert_eq!(loaded.data, r.data);
    }

    #[test]
    fn missing_and_expired_are_none() {
        let r = sample(None);
        assert!(decode(&r.id, None, now()).unwrap().is_none());
        let past = (unix_millis(now()) - 1).to_string();
        let value = stored("7", &past, &r.encode().unwrap());
        assert!(decode(&r.id, value, now()).unwrap().is_none());
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let r = sample(None);
        let mut bad_format = r.encode().unwrap();
        bad_format[0] = 200;
        let good = r.encode().unwrap();
        for value in [
            stored("7", "", &bad_format),
            stored("x", "", &good),
            stored("8", "", &good),
            stored("7", "soon", &good),
            stored("", "", &good),
            stored("7", "", &[]),
            Some(b"7:".to_vec()),
            Some(b"7::token".to_vec()),
            Some(Vec::new()),
            Some(good.clone()),
        ] {
            let got = decode(&r.id, value.clone(), now());
            assert!(
                matches!(got, Err(Error::Decode(_))),
                "{value:?} gave {got:?}"
            );
        }
    }
}
