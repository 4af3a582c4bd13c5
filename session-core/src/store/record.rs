//! Versioned session records and their compact binary encoding.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use super::binding::Binding;
use super::clock::{from_unix_millis, truncate_millis, unix_millis};
use super::value::{Data, MAX_DEPTH, Value};
use crate::{Device, Id, SessionHandle};

/// One stored session: its data plus the metadata stores need for
/// compare-and-set saves and expiry.
///
/// Times are kept to the millisecond; [`now`](crate::store::now) gives the current time at that
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
    /// The user the session is bound to, if any
    /// ([`Session::bind_user`](crate::Session::bind_user)).
    pub binding: Option<Binding>,
}

/// A binding as encoded: user, handle, user agent, IP, last seen (ms).
type EncodedBinding<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, i64);
/// A binding as decoded.
type DecodedBinding = (String, String, Option<String>, Option<String>, i64);

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
            binding: None,
        }
    }

    /// Whether the record's expiry time has passed at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Encodes everything but the ID (which is the store's key) into the
    /// compact, versioned binary form shared by the stores.
    ///
    /// The first byte is the format version; the rest is MessagePack, with
    /// each value as binary holding its own encoding, so that loading a
    /// record decodes no value.
    ///
    /// This writes format 2 for a record bound to no user, and format 3
    /// (format 2 plus the [`Binding`]) for a bound one. Versions before a
    /// format cannot read it: when a fleet moves to it from one that wrote
    /// format 1, records the new instances write are unreadable to the old
    /// ones (a failed request on a server-side store, a fresh session with
    /// the cookie store) until the last old instance is gone. Sessions
    /// bound to a user are the only ones written in format 3, so a fleet
    /// that moves to it keeps serving every other session from old and
    /// new instances alike.
    ///
    /// # Errors
    ///
    /// Not in practice: the values are already encoded, and writing into a
    /// `Vec` does not fail.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let body = (
            self.version,
            unix_millis(self.created_at),
            self.expires_at.map(unix_millis),
            &self.data,
        );
        let size: usize = self
            .data
            .iter()
            .map(|(k, v)| k.len() + v.as_bytes().len() + 10)
            .sum();
        let mut out = Vec::with_capacity(32 + size);
        let written = match &self.binding {
            None => {
                out.push(FORMAT_V2);
                rmp_serde::encode::write(&mut out, &body)
            }
            Some(b) => {
                out.push(FORMAT_V3);
                let binding: EncodedBinding<'_> = (
                    &b.user,
                    b.handle.as_str(),
                    b.device.user_agent.as_deref(),
                    b.device.ip.as_deref(),
                    unix_millis(b.last_seen),
                );
                rmp_serde::encode::write(&mut out, &(body.0, body.1, body.2, body.3, binding))
            }
        };
        written.map_err(|e| EncodeError(e.to_string()))?;
        Ok(out)
    }

    /// Decodes bytes written by [`Record::encode`], or by earlier versions
    /// of it (format 1, whose values were JSON trees in MessagePack).
    ///
    /// The values themselves are checked when they are read
    /// ([`Value::get`]).
    ///
    /// # Errors
    ///
    /// An unknown format version, truncated or malformed input, or times out
    /// of range give a [`DecodeError`]; decoding never panics on any input.
    pub fn decode(id: Id, bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&format, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let mut de = rmp_serde::Deserializer::from_read_ref(body);
        de.set_max_depth(MAX_DEPTH);
        let malformed = |e: rmp_serde::decode::Error| DecodeError::Malformed(e.to_string());
        let mut binding = None;
        let (version, created, expires, data) = match format {
            FORMAT_V3 => {
                let (version, created, expires, data, bound): (
                    u64,
                    i64,
                    Option<i64>,
                    Data,
                    DecodedBinding,
                ) = Deserialize::deserialize(&mut de).map_err(malformed)?;
                binding = Some(decode_binding(bound)?);
                (version, created, expires, data)
            }
            FORMAT_V2 => {
                let body: (u64, i64, Option<i64>, Data) =
                    Deserialize::deserialize(&mut de).map_err(malformed)?;
                body
            }
            FORMAT_V1 => {
                let (version, created, expires, json): (
                    u64,
                    i64,
                    Option<i64>,
                    BTreeMap<String, serde_json::Value>,
                ) = Deserialize::deserialize(&mut de).map_err(malformed)?;
                let data = json.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
                (version, created, expires, data)
            }
            other => return Err(DecodeError::UnknownFormat(other)),
        };
        Ok(Record {
            id,
            version,
            created_at: from_unix_millis(created).ok_or(DecodeError::TimeOutOfRange)?,
            expires_at: match expires {
                Some(ms) => Some(from_unix_millis(ms).ok_or(DecodeError::TimeOutOfRange)?),
                None => None,
            },
            data,
            binding,
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

/// Values as JSON trees in MessagePack (read, no longer written).
const FORMAT_V1: u8 = 1;
/// Values as binary holding each value's own MessagePack.
const FORMAT_V2: u8 = 2;
/// Format 2 followed by the user the session is bound to.
const FORMAT_V3: u8 = 3;

fn decode_binding(
    (user, handle, user_agent, ip, last_seen): DecodedBinding,
) -> Result<Binding, DecodeError> {
    let handle: SessionHandle = handle
        .parse()
        .map_err(|_| DecodeError::Malformed("malformed session handle".into()))?;
    let mut device = Device::new();
    device.user_agent = user_agent;
    device.ip = ip;
    let last_seen = from_unix_millis(last_seen).ok_or(DecodeError::TimeOutOfRange)?;
    Ok(Binding::new(user, handle, device, last_seen))
}

/// Error from [`Record::encode`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot encode session record: {0}")]
pub struct EncodeError(String);

impl EncodeError {
    pub(crate) fn new(why: String) -> Self {
        EncodeError(why)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;
    use serde_json::json;

    fn sample() -> Record {
        let mut data = Data::new();
        data.insert(
            "cart".into(),
            json!([{"sku": "A-1", "qty": 2}, {"sku": "B", "qty": -1}]).into(),
        );
        data.insert(
            "user".into(),
            json!({"id": 7, "name": "Zoë", "admin": false, "x": 1.5}).into(),
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
    fn bound_records_round_trip_in_format_3() {
        let mut r = sample();
        r.binding = Some(Binding::new(
            "alice",
            SessionHandle::random(),
            Device::new().with_user_agent("UA/1").with_ip("192.0.2.1"),
            now(),
        ));
        let bytes = r.encode().unwrap();
        assert_eq!(bytes[0], FORMAT_V3);
        assert_eq!(Record::decode(r.id.clone(), &bytes).unwrap(), r);
        for cut in 1..bytes.len() {
            assert!(Record::decode(r.id.clone(), &bytes[..cut]).is_err());
        }
        // Unbound records stay in format 2, readable by older versions.
        assert_eq!(sample().encode().unwrap()[0], FORMAT_V2);
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
        bytes[0] = FORMAT_V2;
        for cut in 1..bytes.len() {
            assert!(
                Record::decode(r.id.clone(), &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn format_1_records_still_decode() {
        let r = sample();
        let json: BTreeMap<String, serde_json::Value> = r
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json().unwrap()))
            .collect();
        let body = (
            r.version,
            unix_millis(r.created_at),
            r.expires_at.map(unix_millis),
            &json,
        );
        let mut bytes = vec![FORMAT_V1];
        rmp_serde::encode::write(&mut bytes, &body).unwrap();
        let decoded = Record::decode(r.id.clone(), &bytes).unwrap();
        assert_eq!(decoded, r);
        let cart: Vec<serde_json::Value> = decoded.data["cart"].get().unwrap();
        assert_eq!(cart[1]["qty"], -1);
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
