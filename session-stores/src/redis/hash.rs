//! The hash that holds one session: reading it, and turning its fields
//! back into a [`Record`].
//!
//! The fields are `v` (version), `e` (expiry, ms since the Unix epoch),
//! `d` (the encoded record) and `w` (the last write's token); the scripts
//! in [`scripts`](super::scripts) write them.

use redis::{Cmd, CommandCacheConfig};
use session_core::store::Record;
use session_core::{Id, Result};
use time::OffsetDateTime;

use crate::stored::{decode_unexpired, malformed};

/// The fields one read returns: `v`, `e` and `d`, in that order.
pub(super) type Fields = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// `HMGET key v e d`; served by the near cache when `cached`.
pub(super) fn read(key: &str, cached: bool) -> Cmd {
    // Sized up front: five arguments, and their bytes.
    let mut cmd = Cmd::with_capacity(5, key.len() + 8);
    cmd.arg("HMGET").arg(key).arg("v").arg("e").arg("d");
    if cached {
        cmd.set_cache_config(CommandCacheConfig::new());
    }
    cmd
}

/// Builds a record from the fields `v`, `e` and `d` of its hash, or `None`
/// if there is no hash or it has expired at `now`.
pub(super) fn decode(id: &Id, fields: Fields, now: OffsetDateTime) -> Result<Option<Record>> {
    let (v, e, d) = fields;
    if v.is_none() && e.is_none() && d.is_none() {
        return Ok(None);
    }
    let expires_ms = e.as_deref().map(|raw| number("e", raw)).transpose()?;
    decode_unexpired(
        id,
        expires_ms,
        now,
        || {
            v.as_deref()
                .map(|raw| number("v", raw))
                .transpose()?
                .ok_or_else(|| malformed("session hash has no version field `v`"))
        },
        || {
            d.as_deref()
                .ok_or_else(|| malformed("session hash has no data field `d`"))
        },
    )
}

pub(super) fn number(name: &str, raw: &[u8]) -> Result<i64> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| malformed(format!("session hash field `{name}` is not a number")))
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

    #[test]
    fn fields_round_trip_and_expiry_comes_from_e() {
        let r = sample(Some(now() + time::Duration::hours(1)));
        let later = now() + time::Duration::hours(2);
        let fields = (
            Some(b"7".to_vec()),
            Some(unix_millis(later).to_string().into_bytes()),
            Some(r.encode().unwrap()),
        );
        let loaded = decode(&r.id, fields, now()).unwrap().unwrap();
        assert_eq!(loaded.expires_at, Some(later));
        assert_eq!((loaded.version, &loaded.data), (r.version, &r.data));
    }

    #[test]
    fn missing_and_expired_are_none() {
        let r = sample(None);
        assert!(decode(&r.id, (None, None, None), now()).unwrap().is_none());
        let past = unix_millis(now()) - 1;
        let fields = (
            Some(b"7".to_vec()),
            Some(past.to_string().into_bytes()),
            Some(r.encode().unwrap()),
        );
        assert!(decode(&r.id, fields, now()).unwrap().is_none());
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let r = sample(None);
        let mut bad_format = r.encode().unwrap();
        bad_format[0] = 200;
        for fields in [
            (Some(b"7".to_vec()), None, Some(bad_format)),
            (Some(b"x".to_vec()), None, Some(r.encode().unwrap())),
            (Some(b"8".to_vec()), None, Some(r.encode().unwrap())),
            (Some(b"7".to_vec()), None, None),
            (None, None, Some(r.encode().unwrap())),
            (Some(b"7".to_vec()), None, Some(Vec::new())),
        ] {
            let got = decode(&r.id, fields.clone(), now());
            assert!(
                matches!(got, Err(Error::Decode(_))),
                "{fields:?} gave {got:?}"
            );
        }
    }
}
