//! Entries, their time stamps and the wire format used in Redis.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cached answer: `value` is `None` for a negative ("does not exist") entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry<V> {
    pub(crate) value: Option<V>,
    /// Logical expiry, in milliseconds since the Unix epoch (wall clock, so
    /// that every instance reading the shared tier agrees on it).
    pub(crate) expires_at_ms: u64,
    /// How long the load that produced this entry took, for early refresh.
    pub(crate) delta_ms: u32,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Shortens `ttl` by a random fraction of at most `jitter` (0.0–1.0), so that
/// entries filled together do not all expire together. Never returns less
/// than one millisecond.
pub(crate) fn jittered(ttl: Duration, jitter: f64) -> Duration {
    let ttl = if jitter > 0.0 {
        ttl.mul_f64(1.0 - jitter * rand::random::<f64>())
    } else {
        ttl
    };
    ttl.max(Duration::from_millis(1))
}

/// Probabilistic early expiration ("XFetch", Vattani et al.): refresh when
/// `now − delta·beta·ln(u) ≥ expiry`, `u` uniform in (0, 1]. The closer the
/// expiry and the slower the load, the likelier a refresh.
pub(crate) fn should_refresh_early(beta: f64, delta_ms: u32, expires_at_ms: u64, now: u64) -> bool {
    let u = 1.0 - rand::random::<f64>();
    let gap = -f64::from(delta_ms) * beta * u.ln();
    now as f64 + gap >= expires_at_ms as f64
}

/// Encoding of an [`Entry`] stored in Redis:
///
/// ```text
/// [0]      format version (1)
/// [1]      flags: bit 0 set when a value is present
/// [2..10]  expires_at_ms, u64 big-endian
/// [10..14] delta_ms, u32 big-endian
/// [14..]   the value, MessagePack (present entries only)
/// ```
#[cfg(feature = "redis")]
pub(crate) mod wire {
    use super::Entry;

    const VERSION: u8 = 1;
    const PRESENT: u8 = 1;
    const HEADER: usize = 14;

    /// A stored blob that could not be decoded.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub(crate) struct DecodeError(String);

    pub(crate) fn encode<V: serde::Serialize>(
        entry: &Entry<V>,
    ) -> Result<Vec<u8>, rmp_serde::encode::Error> {
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

    pub(crate) fn decode<V: serde::de::DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<Entry<V>, DecodeError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let ttl = Duration::from_secs(10);
        for _ in 0..1000 {
            let t = jittered(ttl, 0.2);
            assert!(t <= ttl && t >= Duration::from_secs(8), "{t:?}");
        }
        assert_eq!(jittered(ttl, 0.0), ttl);
    }

    #[test]
    fn early_refresh_depends_on_distance_to_expiry() {
        let now = 1_000_000;
        // Already expired: always refresh.
        assert!(should_refresh_early(1.0, 10, now, now));
        // A fast load one hour away from expiry: practically never.
        assert!(!(0..1000).any(|_| should_refresh_early(1.0, 10, now + 3_600_000, now)));
        // No load time recorded: never before expiry.
        assert!(!should_refresh_early(1.0, 0, now + 1, now));
    }
}
