//! Users' session indexes in Memcached: one item per user, under
//! `<prefix>user:<user key>` (the user key being
//! [`session_core::store::user_key`]), on the node rendezvous hashing picks
//! for that key, changed only with `ms`/`md` on the CAS value just read.
//!
//! The item's value is `SMU` and the layout version 1, the index's version
//! (8 bytes, big-endian), its expiry in milliseconds since the Unix epoch
//! (8 bytes, big-endian; `i64::MIN` for none), then the index as
//! session-core encodes it.

use session_core::Result;
use session_core::store::{UserIndex, from_unix_millis, now, unix_millis};

use super::client::{self, SetMode, Status};
use super::codec;
use super::store::MemcachedStore;
use crate::stored::malformed;

const MAGIC: &[u8; 4] = b"SMU\x01";
const NO_EXPIRY: i64 = i64::MIN;

fn encode(index: &UserIndex) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + index.bytes.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&index.version.to_be_bytes());
    let expires = index.expires_at.map_or(NO_EXPIRY, unix_millis);
    out.extend_from_slice(&expires.to_be_bytes());
    out.extend_from_slice(&index.bytes);
    out
}

fn decode(value: &[u8]) -> Result<UserIndex> {
    let bad = || malformed("Memcached user index item has an unknown layout or is cut");
    let rest = value.strip_prefix(&MAGIC[..]).ok_or_else(bad)?;
    let (version, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let (expires, data) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let expires_at = match i64::from_be_bytes(*expires) {
        NO_EXPIRY => None,
        ms => Some(from_unix_millis(ms).ok_or_else(bad)?),
    };
    Ok(UserIndex::new(
        u64::from_be_bytes(*version),
        expires_at,
        data.to_vec(),
    ))
}

impl MemcachedStore {
    /// The Memcached key of `user`'s session index.
    pub fn user_index_key(&self, user: &str) -> String {
        format!(
            "{}user:{}",
            self.key_prefix(),
            session_core::store::user_key(user)
        )
    }

    /// The live index under `key` and the CAS value of its item, with the
    /// CAS value of an expired item Memcached still holds (its lifetime is
    /// rounded up to the second).
    async fn read_index(&self, key: &str) -> Result<(Option<UserIndex>, Option<u64>)> {
        let mut reply = self
            .call_key(key, "load_user_index", &client::get(key))
            .await?;
        let (value, cas) = match (reply.status, reply.value.take(), reply.meta.cas) {
            (Status::Miss, ..) => return Ok((None, None)),
            (Status::Value, Some(value), Some(cas)) => (value, cas),
            _ => return Err(self.unexpected_key(key, "load_user_index", &reply)),
        };
        let index = decode(&value)?;
        let now = now();
        Ok(((!index.is_expired(now)).then_some(index), Some(cas)))
    }

    pub(super) async fn load_index(&self, user: &str) -> Result<Option<UserIndex>> {
        Ok(self.read_index(&self.user_index_key(user)).await?.0)
    }

    pub(super) async fn save_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        let key = self.user_index_key(user);
        let (live, cas) = self.read_index(&key).await?;
        let mode = match (expected_version, live, cas) {
            (None, None, None) => SetMode::Add,
            // An expired item still held: replaced only if unchanged.
            (None, None, Some(cas)) => SetMode::Cas(cas),
            (Some(expected), Some(live), Some(cas)) if live.version == expected => {
                SetMode::Cas(cas)
            }
            _ => return Ok(false),
        };
        let exptime = codec::exptime(index.expires_at, now());
        let request = client::set(&key, &encode(index), exptime, mode);
        let reply = self.call_key(&key, "save_user_index", &request).await?;
        match reply.status {
            Status::Done => Ok(true),
            Status::NotStored | Status::Exists | Status::NotFound => Ok(false),
            _ => Err(self.unexpected_key(&key, "save_user_index", &reply)),
        }
    }

    pub(super) async fn delete_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        let key = self.user_index_key(user);
        let (Some(live), Some(cas)) = self.read_index(&key).await? else {
            return Ok(false);
        };
        if live.version != expected_version {
            return Ok(false);
        }
        let reply = self
            .call_key(&key, "delete_user_index", &client::delete_cas(&key, cas))
            .await?;
        match reply.status {
            Status::Done => Ok(true),
            Status::Exists | Status::NotFound => Ok(false),
            _ => Err(self.unexpected_key(&key, "delete_user_index", &reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_and_garbage_is_an_error() {
        let index = UserIndex::new(7, Some(now()), vec![1, 2, 3]);
        let value = encode(&index);
        assert_eq!(decode(&value).unwrap(), index);
        let none = UserIndex::new(1, None, Vec::new());
        assert_eq!(decode(&encode(&none)).unwrap(), none);
        for cut in 0..20 {
            assert!(decode(&value[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"SMC\x01whatever-else-here").is_err());
    }
}
