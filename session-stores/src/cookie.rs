//! The client-side store: the whole session sealed in its cookie.
//!
//! [`CookieStore`] encrypts and authenticates each session with
//! AES-256-GCM (the `aes-gcm` crate) and hands it to the browser; no server
//! keeps anything, so any instance serves any request and losing an
//! instance loses nothing.
//!
//! ```
//! use session_core::SessionLayer;
//! use session_stores::cookie::{CookieStore, Key};
//!
//! // In production, load the keys from a secret store: for example
//! // `CookieStore::from_base64_keys(&std::env::var("COOKIE_KEYS")?)`.
//! let current = Key::generate();
//! let retired = Key::generate();
//! let store = CookieStore::with_keys([current, retired]).unwrap();
//! let layer = SessionLayer::client_side(store);
//! # let _ = layer;
//! ```
//!
//! # What the cookie holds
//!
//! `base64url(format ‖ nonce ‖ AES-256-GCM(id ‖ record))`, with a fresh
//! random 96-bit nonce per seal. The cookie's *name* is part of the
//! authenticated data, so a value cannot be moved to another cookie. The
//! expiry is inside the sealed record and enforced when the cookie is
//! opened, so a copy kept past its expiry is worthless.
//!
//! # Keys
//!
//! A list of keys: the first seals, all open. A cookie sealed with a
//! retired key opens and is sealed again with the current key on the
//! response, so keys can be rotated without logging anyone out: add the new
//! key first, keep the old one until the longest session has passed, then
//! drop it.
//!
//! # Failure behaviour
//!
//! - Tampered, truncated, garbage, wrong-key, wrong-name or expired values
//!   start a fresh session (logged at debug level), never an error page.
//! - A change that would make the cookie larger than the browser limit
//!   (name and value: 4096 bytes by default, see
//!   [`CookieStore::with_max_cookie_bytes`]) fails at `insert` / `update`
//!   with [`session_core::Error::TooLarge`] (`413` if the
//!   handler returns it); nothing is half-written and the previous cookie
//!   stays valid.
//! - **Concurrent requests are last-writer-wins.** Each request carries the
//!   cookie it was sent with and the browser keeps whichever response
//!   arrives last, so two "add to cart" requests in flight at once can lose
//!   one item. Use a server-side store where that matters.
//! - Log-out removes the cookie but cannot revoke a copy an attacker kept:
//!   keep idle timeouts short, or use a server-side store.
//! - **No list of a user's sessions, no revocation.** Nothing on the
//!   server knows which cookies exist, so
//!   [`Session::bind_user`](session_core::Session::bind_user), the
//!   listing and the `revoke_*` calls fail with
//!   [`session_core::Error::Unsupported`] (`501 Not Implemented` if a
//!   handler returns it), and
//!   [`SessionLayer::supports_user_sessions`](session_core::SessionLayer::supports_user_sessions)
//!   says `false` so an app can hide such pages. "Sign out everywhere"
//!   needs a server-side store.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use session_core::store::{Opened, Record, now};
use session_core::{ClientStore, Error, Id, Result};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const ID_LEN: usize = 22;
const DOMAIN: &[u8] = b"stateful session cookie v1\0";

/// A 256-bit key for [`CookieStore`].
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    /// A fresh random key from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Key(bytes)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(bytes)
    }

    /// A key from standard or URL-safe base64 of 32 bytes.
    ///
    /// # Errors
    ///
    /// Not base64, or not 32 bytes.
    pub fn from_base64(s: &str) -> std::result::Result<Self, KeyError> {
        let s = s.trim();
        let bytes = STANDARD
            .decode(s)
            .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
            .map_err(|_| KeyError::NotBase64)?;
        let len = bytes.len();
        Ok(Key(bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength(len))?))
    }

    /// The key in standard base64, as [`from_base64`](Key::from_base64)
    /// reads it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not base64.
    #[error("cookie key is not base64")]
    NotBase64,
    /// The key does not have 32 bytes.
    #[error("cookie key has {0} bytes; AES-256 needs 32")]
    WrongLength(usize),
    /// No key was given.
    #[error("no cookie key given")]
    Empty,
}

/// Keeps each session in its own cookie, sealed with AES-256-GCM; see the
/// [module documentation](self).
#[derive(Clone)]
pub struct CookieStore {
    ciphers: Arc<[Aes256Gcm]>,
    max_cookie_bytes: usize,
}

impl CookieStore {
    /// A store sealing with `key`.
    pub fn new(key: Key) -> Self {
        Self::with_keys([key]).expect("one key given")
    }

    /// A store sealing with the first key and opening with any of them.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] if no key is given.
    pub fn with_keys(keys: impl IntoIterator<Item = Key>) -> std::result::Result<Self, KeyError> {
        let ciphers: Arc<[Aes256Gcm]> = keys
            .into_iter()
            .map(|k| Aes256Gcm::new(&k.0.into()))
            .collect();
        if ciphers.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(CookieStore {
            ciphers,
            max_cookie_bytes: 4096,
        })
    }

    /// A store from comma-separated base64 keys, current key first (the
    /// form of the shop's `COOKIE_KEYS`).
    ///
    /// # Errors
    ///
    /// A key that is not base64 of 32 bytes, or no key at all.
    pub fn from_base64_keys(keys: &str) -> std::result::Result<Self, KeyError> {
        let keys = keys
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(Key::from_base64)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Self::with_keys(keys)
    }

    /// The largest cookie, name plus value, that a seal may produce (default
    /// 4096 bytes, what browsers keep).
    pub fn with_max_cookie_bytes(mut self, max: usize) -> Self {
        self.max_cookie_bytes = max;
        self
    }
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("keys", &self.ciphers.len())
            .field("max_cookie_bytes", &self.max_cookie_bytes)
            .finish()
    }
}

fn aad(cookie_name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DOMAIN.len() + 1 + cookie_name.len());
    aad.extend_from_slice(DOMAIN);
    aad.push(FORMAT_V1);
    aad.extend_from_slice(cookie_name.as_bytes());
    aad
}

impl ClientStore for CookieStore {
    fn seal(&self, cookie_name: &str, record: &Record) -> Result<String> {
        let mut plain = Vec::with_capacity(256);
        plain.extend_from_slice(record.id.as_str().as_bytes());
        plain.extend_from_slice(&record.encode()?);

        // Known before encrypting: reject early, without spending the work.
        let sealed_len = 1 + NONCE_LEN + plain.len() + TAG_LEN;
        let size = cookie_name.len() + 1 + base64_len(sealed_len);
        if size > self.max_cookie_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_cookie_bytes,
            });
        }

        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(Error::backend)?;
        let cipher = &self.ciphers[0];
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(cookie_name),
                },
            )
            .map_err(|_| Error::backend("AES-GCM encryption failed"))?;
        let mut out = Vec::with_capacity(sealed_len);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, cookie_name: &str, value: &str) -> Option<Opened> {
        let why = match self.try_open(cookie_name, value) {
            Ok(opened) => return Some(opened),
            Err(why) => why,
        };
        tracing::debug!(reason = why, "session cookie rejected");
        crate::metrics::cookie_rejected(why);
        None
    }
}

impl CookieStore {
    fn try_open(
        &self,
        cookie_name: &str,
        value: &str,
    ) -> std::result::Result<Opened, &'static str> {
        if cookie_name.len() + 1 + value.len() > self.max_cookie_bytes {
            return Err("longer than any cookie this store seals");
        }
        let raw = URL_SAFE_NO_PAD.decode(value).map_err(|_| "not base64")?;
        let Some((&format, rest)) = raw.split_first() else {
            return Err("empty");
        };
        if format != FORMAT_V1 {
            return Err("unknown format");
        }
        if rest.len() < NONCE_LEN + TAG_LEN + ID_LEN {
            return Err("truncated");
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| "truncated")?);
        let aad = aad(cookie_name);
        let (index, plain) = self
            .ciphers
            .iter()
            .enumerate()
            .find_map(|(i, cipher)| {
                cipher
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: sealed,
                            aad: &aad,
                        },
                    )
                    .ok()
                    .map(|plain| (i, plain))
            })
            .ok_or("does not authenticate under any key")?;
        let (id, record) = plain.split_at(ID_LEN);
        let id = std::str::from_utf8(id)
            .ok()
            .and_then(Id::parse)
            .ok_or("bad id")?;
        let record = Record::decode(id, record).map_err(|_| "bad record")?;
        if record.is_expired(now()) {
            return Err("expired");
        }
        Ok(Opened::new(record, index > 0))
    }
}

/// Length of unpadded base64 for `n` bytes.
fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Record {
        let mut data = session_core::store::Data::new();
        data.insert("cart".into(), json!([{"sku": "A", "qty": 1}]).into());
        Record::new(
            Id::random(),
            data,
            now(),
            Some(now() + time::Duration::hours(1)),
        )
    }

    #[test]
    fn seal_open_round_trip_and_size_is_predicted() {
        let store = CookieStore::new(Key::generate());
        let r = record();
        let value = store.seal("sid", &r).unwrap();
        let opened = store.open("sid", &value).unwrap();
        assert_eq!(opened.record, r);
        assert!(!opened.reseal);
        let plain = 22 + r.encode().unwrap().len();
        assert_eq!(value.len(), base64_len(1 + NONCE_LEN + plain + TAG_LEN));
    }

    #[test]
    fn nonces_are_fresh() {
        let store = CookieStore::new(Key::generate());
        let r = record();
        assert_ne!(
            store.seal("sid", &r).unwrap(),
            store.seal("sid", &r).unwrap()
        );
    }

    #[test]
    fn keys_parse_from_base64() {
        let k = Key::generate();
        let store = CookieStore::from_base64_keys(&format!(
            " {} ,{}",
            k.to_base64(),
            Key::generate().to_base64()
        ));
        assert!(store.is_ok());
        assert_eq!(
            CookieStore::from_base64_keys("").unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(Key::from_base64("!!").unwrap_err(), KeyError::NotBase64);
        assert_eq!(
            Key::from_base64("AAAA").unwrap_err(),
            KeyError::WrongLength(3)
        );
    }
}
