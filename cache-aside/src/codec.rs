//! How keys and entries of one cache travel to and from Redis (L2).
//!
//! An [`Entry`] is stored as:
//!
//! ```text
//! [0]      format version (1)
//! [1]      flags: bit 0 set when a value is present
//! [2..10]  expires_at_ms, u64 big-endian
//! [10..14] delta_ms, u32 big-endian
//! [14..]   the value, MessagePack (present entries only)
//! ```

use crate::entry::Entry;

/// Type-specific conversions, captured where the serde bounds are known so
/// that the cache itself does not need them.
pub(crate) struct Codec<K, V> {
    /// The key's part of Redis key names (its `Display` form).
    pub(crate) key_name: fn(&K) -> String,
    /// The key as sent on the invalidation channel.
    pub(crate) key_encode: fn(&K) -> Option<Vec<u8>>,
    pub(crate) key_decode: fn(&[u8]) -> Option<K>,
    pub(crate) encode: fn(&Entry<V>) -> Result<Vec<u8>, String>,
    pub(crate) decode: fn(&[u8]) -> Result<Entry<V>, String>,
}

impl<K, V> Codec<K, V>
where
    K: std::fmt::Display + serde::Serialize + serde::de::DeserializeOwned,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    pub(crate) fn new() -> Self {
        Self {
            key_name: |k| k.to_string(),
            key_encode: |k| rmp_serde::to_vec(k).ok(),
            key_decode: |b| rmp_serde::from_slice(b).ok(),
            encode: |e| encode(e).map_err(|e| e.to_string()),
            decode: |b| decode(b).map_err(|e| e.to_string()),
        }
    }
}

const VERSION: u8 = 1;
const PRESENT: u8 = 1;
const HEADER: usize = 14;

/// A stored blob that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DecodeError(String);

fn encode<V: serde::Serialize>(entry: &Entry<V>) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.push(if entry.value.is_some() { PRESENT } else { 0 });
    out.extend_from_slice(&entry.expires_at_ms.to_be_bytes());
    out.extend_from_slice(&entry.delta_ms.to_be_bytes());
    if let Some(value) = &entry.value {
        rmp_serde::encode::write_named(&mut out, value)?;
    }
    Ok(out)
}

fn decode<V: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Entry<V>, DecodeError> {
    if bytes.len() < HEADER {
        return Err(DecodeError(format!(
            "blob of {} bytes is too short",
            bytes.len()
        )));
    }
    if bytes[0] != VERSION {
        return Err(DecodeError(format!("unknown format version {}", bytes[0])));
    }
    let mut expires = [0u8; 8];
    expires.copy_from_slice(&bytes[2..10]);
    let mut delta = [0u8; 4];
    delta.copy_from_slice(&bytes[10..14]);
    let value = if bytes[1] & PRESENT != 0 {
        Some(rmp_serde::from_slice(&bytes[HEADER..]).map_err(|e| DecodeError(e.to_string()))?)
    } else {
        None
    };
    Ok(Entry {
        value,
        expires_at_ms: u64::from_be_bytes(expires),
        delta_ms: u32::from_be_bytes(delta),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_present_and_absent() {
        let e = Entry {
            value: Some(vec![Some(1u8), None]),
            expires_at_ms: 1_700_000_000_123,
            delta_ms: 42,
        };
        let d: Entry<Vec<Option<u8>>> = decode(&encode(&e).unwrap()).unwrap();
        assert_eq!(d.value, e.value);
        assert_eq!((d.expires_at_ms, d.delta_ms), (e.expires_at_ms, 42));

        // An absent entry stays distinguishable from a present `None`.
        let absent: Entry<Option<u8>> = Entry {
            value: None,
            expires_at_ms: 1,
            delta_ms: 0,
        };
        let present_none: Entry<Option<u8>> = Entry {
            value: Some(None),
            ..absent.clone()
        };
        assert_eq!(
            decode::<Option<u8>>(&encode(&absent).unwrap())
                .unwrap()
                .value,
            None
        );
        assert_eq!(
            decode::<Option<u8>>(&encode(&present_none).unwrap())
                .unwrap()
                .value,
            Some(None)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode::<u8>(b"short").is_err());
        assert!(decode::<u8>(&[9u8; 20]).is_err());
    }
}
