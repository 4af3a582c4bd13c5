//! What the store keeps in a Memcached item, and the items' lifetimes.
//!
//! A session item's value is a header followed by the record as written by
//! [`Record::encode`]:
//!
//! | bytes | content |
//! |-------|---------|
//! | 4     | `SMC` and the layout version, 1 |
//! | 8     | the record's version, big-endian |
//! | 8     | the expiry in milliseconds since the Unix epoch, big-endian; `i64::MIN` for none |
//! | 1 + n | the length and bytes of the write token, naming the write |
//! | rest  | the record |
//!
//! A touch leaves the item alone but for its lifetime, and writes the exact
//! new expiry into a small note item beside it: `<CAS value> <ms>` (or `-`
//! for none), valid only while the session item keeps that CAS value.

use session_core::store::{DecodeError, Record, from_unix_millis, unix_millis};
use time::OffsetDateTime;

const MAGIC: &[u8; 4] = b"SMC\x01";
const NO_EXPIRY: i64 = i64::MIN;
/// Memcached reads a lifetime above this many seconds (30 days) as an
/// absolute Unix time.
pub(super) const MAX_RELATIVE_TTL: i64 = 30 * 24 * 3600;

/// The header of a session item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header<'a> {
    pub(super) version: u64,
    pub(super) expires_ms: Option<i64>,
    pub(super) token: &'a [u8],
}

/// The value of the item for `record`, written by the write `token`.
pub(super) fn encode(record: &Record, encoded: &[u8], token: &str) -> Vec<u8> {
    let token = token.as_bytes();
    let token = &token[..token.len().min(255)];
    let mut out = Vec::with_capacity(4 + 8 + 8 + 1 + token.len() + encoded.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&record.version.to_be_bytes());
    let expires = record.expires_at.map_or(NO_EXPIRY, unix_millis);
    out.extend_from_slice(&expires.to_be_bytes());
    out.push(token.len() as u8);
    out.extend_from_slice(token);
    out.extend_from_slice(encoded);
    out
}

/// Splits an item's value into its header and the encoded record.
///
/// # Errors
///
/// A value that is not a session item of this layout (another
/// application's item under the same prefix, garbage, a cut value);
/// [`DecodeError::UnknownFormat`] for an item of another layout version
/// of this store's (a newer build's).
pub(super) fn split(value: &[u8]) -> Result<(Header<'_>, &[u8]), DecodeError> {
    let malformed = |what: &str| DecodeError::Malformed(format!("Memcached session item {what}"));
    let rest = value.strip_prefix(&MAGIC[..3]).ok_or_else(|| {
        malformed("has an unknown layout (not written by this store, or another application's item under the session prefix)")
    })?;
    let (&layout, rest) = rest
        .split_first()
        .ok_or_else(|| malformed("is cut short"))?;
    if layout != MAGIC[3] {
        // Another layout of this store's, from a newer build: not garbage.
        return Err(DecodeError::UnknownFormat(layout));
    }
    let (version, rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| malformed("is cut short"))?;
    let (expires, rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| malformed("is cut short"))?;
    let (&token_len, rest) = rest
        .split_first()
        .ok_or_else(|| malformed("is cut short"))?;
    let (token, record) = rest
        .split_at_checked(usize::from(token_len))
        .ok_or_else(|| malformed("is cut short"))?;
    let expires = i64::from_be_bytes(*expires);
    if expires != NO_EXPIRY && from_unix_millis(expires).is_none() {
        return Err(DecodeError::TimeOutOfRange);
    }
    let header = Header {
        version: u64::from_be_bytes(*version),
        expires_ms: (expires != NO_EXPIRY).then_some(expires),
        token,
    };
    Ok((header, record))
}

/// The note a touch writes: the CAS value of the item it touched and the
/// new expiry.
pub(super) fn encode_note(cas: u64, expires_at: Option<OffsetDateTime>) -> Vec<u8> {
    match expires_at {
        Some(at) => format!("{cas} {}", unix_millis(at)),
        None => format!("{cas} -"),
    }
    .into_bytes()
}

/// The expiry in a touch's note, if the note is about the item with CAS
/// value `cas`; `None` for a note about another write or an unreadable one.
pub(super) fn note_expiry(note: &[u8], cas: u64) -> Option<Option<i64>> {
    let text = std::str::from_utf8(note).ok()?;
    let (note_cas, expiry) = text.split_once(' ')?;
    if note_cas.parse::<u64>().ok()? != cas {
        return None;
    }
    match expiry {
        "-" => Some(None),
        ms => {
            let ms = ms.parse::<i64>().ok()?;
            from_unix_millis(ms)?;
            Some(Some(ms))
        }
    }
}

/// The Memcached lifetime (`T` flag) for an item expiring at `expires_at`,
/// at `now`: `0` for none; seconds from now (rounded up, plus one) up to
/// 30 days; beyond that the absolute Unix time, since Memcached reads
/// larger values so; `-1` (gone at once) for a time already past.
///
/// The extra second: Memcached's clock ticks once a second, and an item
/// given `n` seconds goes at the `n`-th tick, which comes up to a second
/// before `n` seconds have passed. One more keeps every item at least as
/// long as its session lives; reads check the session's own expiry, so
/// none is served late.
pub(super) fn exptime(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> i64 {
    let Some(at) = expires_at else { return 0 };
    let left_ms = unix_millis(at) - unix_millis(now);
    if left_ms <= 0 {
        return -1;
    }
    let secs = (left_ms + 999) / 1000 + 1;
    if secs <= MAX_RELATIVE_TTL {
        secs
    } else {
        (unix_millis(at) + 999).div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Id;
    use session_core::store::{Data, now};
    use time::Duration;

    fn decode(
        id: &Id,
        header: &Header<'_>,
        record: &[u8],
        expires_ms: Option<i64>,
    ) -> Result<Record, DecodeError> {
        let version = i64::try_from(header.version)
            .map_err(|_| DecodeError::Malformed("version out of range".into()))?;
        Record::decode_with_metadata(id.clone(), record, version, expires_ms)
    }

    fn sample(expires_at: Option<OffsetDateTime>) -> Record {
        let mut data = Data::new();
        data.insert("cart".into(), serde_json::json!(["A-1"]).into());
        let mut r = Record::new(Id::random(), data, now(), expires_at);
        r.version = 5;
        r
    }

    #[test]
    fn items_round_trip() {
        for expires in [None, Some(now() + Duration::hours(1))] {
            let r = sample(expires);
            let value = encode(&r, &r.encode().unwrap(), "token-1");
            let (header, record) = split(&value).unwrap();
            assert_eq!(header.version, 5);
            assert_eq!(header.token, b"token-1");
            assert_eq!(header.expires_ms, r.expires_at.map(unix_millis));
            assert_eq!(
                decode(&r.id, &header, record, header.expires_ms).unwrap(),
                r
            );
        }
    }

    #[test]
    fn cut_foreign_and_garbage_items_are_decode_errors() {
        let r = sample(Some(now() + Duration::hours(1)));
        let value = encode(&r, &r.encode().unwrap(), "token-1");
        for cut in 0..value.len() {
            let result =
                split(&value[..cut]).and_then(|(h, rec)| decode(&r.id, &h, rec, h.expires_ms));
            assert!(result.is_err(), "cut at {cut} decoded");
        }
        let mut other_layout = value.clone();
        other_layout[3] = 2;
        let mut wrong_version = value.clone();
        wrong_version[11] = 6;
        for foreign in [
            &b"a:2:{s:4:\"cart\";a:0:{}}"[..], // PHP's session format
            b"{\"cart\":[]}",
            b"\x80\x04\x95",
            &other_layout,
        ] {
            assert!(split(foreign).is_err(), "{foreign:?}");
        }
        assert_eq!(
            split(&other_layout).err(),
            Some(DecodeError::UnknownFormat(2))
        );
        let (h, rec) = split(&wrong_version).unwrap();
        assert!(decode(&r.id, &h, rec, h.expires_ms).is_err());
    }

    #[test]
    fn lifetimes_follow_the_30_day_rule() {
        let now = now();
        assert_eq!(exptime(None, now), 0);
        assert_eq!(exptime(Some(now - Duration::seconds(1)), now), -1);
        assert_eq!(exptime(Some(now), now), -1);
        assert_eq!(exptime(Some(now + Duration::milliseconds(1)), now), 2);
        assert_eq!(exptime(Some(now + Duration::milliseconds(1500)), now), 3);
        assert_eq!(
            exptime(Some(now + Duration::days(30) - Duration::seconds(1)), now),
            MAX_RELATIVE_TTL
        );
        let far = now + Duration::days(31);
        let t = exptime(Some(far), now);
        assert!(t > MAX_RELATIVE_TTL);
        assert_eq!(t, (unix_millis(far) + 999) / 1000, "absolute Unix time");
    }

    #[test]
    fn notes_apply_to_their_write_only() {
        let at = now() + Duration::hours(2);
        let note = encode_note(42, Some(at));
        assert_eq!(note_expiry(&note, 42), Some(Some(unix_millis(at))));
        assert_eq!(note_expiry(&note, 43), None);
        assert_eq!(note_expiry(&encode_note(7, None), 7), Some(None));
        for bad in [
            &b""[..],
            b"42",
            b"x 1",
            b"42 x",
            b"42 99999999999999999999",
            b"\xff 1",
        ] {
            assert_eq!(note_expiry(bad, 42), None, "{bad:?}");
        }
    }
}
