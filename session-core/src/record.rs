//! Versioned session records and their compact encoding.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use crate::Id;

/// The key/value data of one session. Values are JSON values, so any
/// `serde` type can be kept and read back.
pub type Data = BTreeMap<String, Value>;

/// One stored session: its data plus the metadata stores need for
/// compare-and-set saves and expiry.
///
/// Times are kept to the millisecond; [`now`] gives the current time at that
/// precision, so a record survives a round trip through any store unchanged.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The session ID, the key under which the record is stored.
    pub id: Id,
    /// Incremented by every successful save; a store accepts a save only if
    /// the version it holds is the one the writer loaded (compare-and-set).
    /// A newly created record has version 1.
    pub version: u64,
    /// When the session was first created; the absolute lifetime counts
    /// from here.
    pub created_at: OffsetDateTime,
    /// When the store may forget the record. `None` keeps it until deleted.
    pub expires_at: Option<OffsetDateTime>,
    /// The session's data.
    pub data: Data,
}

impl Record {
    /// A new record at version 1.
    pub fn new(
        id: Id,
        data: Data,
        created_at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
    ) -> Self {
        Record {
            id,
            version: 1,
            created_at: truncate_millis(created_at),
            expires_at: expires_at.map(truncate_millis),
            data,
        }
    }

    /// Whether the record's expiry time has passed at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Encodes everything but the ID (which is the store's key) into the
    /// compact, versioned binary form shared by the stores.
    ///
    /// The first byte is the format version; the rest is MessagePack.
    ///
    /// # Errors
    ///
    /// Fails only if a data value cannot be written as MessagePack, which
    /// does not happen for values built from `serde_json::Value`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let body = (
            self.version,
            unix_millis(self.created_at),
            self.expires_at.map(unix_millis),
            &self.data,
        );
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT_V1);
        rmp_serde::encode::write(&mut out, &body).map_err(|e| EncodeError(e.to_string()))?;
        Ok(out)
    }

    /// Decodes bytes written by [`Record::encode`].
    ///
    /// # Errors
    ///
    /// An unknown format version, truncated or malformed input, or times out
    /// of range give a [`DecodeError`]; decoding never panics on any input.
    pub fn decode(id: Id, bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&format, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if format != FORMAT_V1 {
            return Err(DecodeError::UnknownFormat(format));
        }
        let mut de = rmp_serde::Deserializer::from_read_ref(body);
        de.set_max_depth(MAX_DEPTH);
        let (version, created, expires, data): (u64, i64, Option<i64>, Data) =
            serde::Deserialize::deserialize(&mut de)
                .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        Ok(Record {
            id,
            version,
            created_at: from_unix_millis(created).ok_or(DecodeError::TimeOutOfRange)?,
            expires_at: match expires {
                Some(ms) => Some(from_unix_millis(ms).ok_or(DecodeError::TimeOutOfRange)?),
                None => None,
            },
            data,
        })
    }

    /// Decodes a record whose store keeps the version and the expiry beside
    /// the encoded bytes, so that scripts and conditional writes can check
    /// and change them without decoding: `version` must match the encoded
    /// one, and `expires_ms` (which `touch` updates) replaces the encoded
    /// expiry.
    ///
    /// # Errors
    ///
    /// As [`Record::decode`], and [`DecodeError::Malformed`] when the
    /// versions differ.
    pub fn decode_with_metadata(
        id: Id,
        bytes: &[u8],
        version: i64,
        expires_ms: Option<i64>,
    ) -> Result<Self, DecodeError> {
        let mut record = Record::decode(id, bytes)?;
        if i64::try_from(record.version).ok() != Some(version) {
            return Err(DecodeError::Malformed(format!(
                "stored version {version} differs from the record's version {}",
                record.version
            )));
        }
        record.expires_at = match expires_ms {
            Some(ms) => Some(from_unix_millis(ms).ok_or(DecodeError::TimeOutOfRange)?),
            None => None,
        };
        Ok(record)
    }
}

const FORMAT_V1: u8 = 1;
/// Nesting limit for decoded values, so hostile input cannot exhaust the
/// stack.
const MAX_DEPTH: usize = 64;

/// Error from [`Record::encode`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot encode session record: {0}")]
pub struct EncodeError(String);

/// Error from [`Record::decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty session record")]
    Empty,
    /// The format byte names a version this build does not know.
    #[error("unknown session record format {0}")]
    UnknownFormat(u8),
    /// The body is not a valid record.
    #[error("malformed session record: {0}")]
    Malformed(String),
    /// A time field is outside the representable range.
    #[error("session record time out of range")]
    TimeOutOfRange,
}

/// The current time, truncated to whole milliseconds like stored times.
pub fn now() -> OffsetDateTime {
    truncate_millis(OffsetDateTime::now_utc())
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    // In range for any date the `time` crate accepts by default.
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time `ms` milliseconds after the Unix epoch, if representable.
pub fn from_unix_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn truncate_millis(t: OffsetDateTime) -> OffsetDateTime {
    from_unix_millis(unix_millis(t)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Record {
        let mut data = Data::new();
        data.insert(
            "cart".into(),
            json!([{"sku": "A-1", "qty": 2}, {"sku": "B", "qty": -1}]),
        );
        data.insert(
            "user".into(),
            json!({"id": 7, "name": "Zoë", "admin": false, "x": 1.5}),
        );
        let mut r = Record::new(
            Id::random(),
            data,
            now(),
            Some(now() + time::Duration::hours(1)),
        );
        r.version = 42;
        r
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let bytes = r.encode().unwrap();
        assert_eq!(Record::decode(r.id.clone(), &bytes).unwrap(), r);
        let mut no_expiry = r.clone();
        no_expiry.expires_at = None;
        let bytes = no_expiry.encode().unwrap();
        assert_eq!(Record::decode(r.id.clone(), &bytes).unwrap(), no_expiry);
    }

    #[test]
    fn unknown_format_and_garbage_are_errors() {
        let r = sample();
        let mut bytes = r.encode().unwrap();
        assert_eq!(Record::decode(r.id.clone(), &[]), Err(DecodeError::Empty));
        bytes[0] = 9;
        assert_eq!(
            Record::decode(r.id.clone(), &bytes),
            Err(DecodeError::UnknownFormat(9))
        );
        bytes[0] = FORMAT_V1;
        for cut in 1..bytes.len() {
            assert!(
                Record::decode(r.id.clone(), &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn deeply_nested_input_is_rejected_without_overflow() {
        // 100 000 nested one-element arrays.
        let mut bytes = vec![FORMAT_V1, 0x94, 0x01, 0x00, 0xc0, 0x81, 0xa1, b'k'];
        bytes.extend(std::iter::repeat_n(0x91, 100_000));
        bytes.push(0xc0);
        assert!(matches!(
            Record::decode(Id::random(), &bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let r = sample();
        let bytes = r.encode().unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = Record::decode(r.id.clone(), &b);
            }
        }
    }
}
