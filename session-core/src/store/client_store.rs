//! The `ClientStore` trait: sessions sealed into the cookie itself.

use std::fmt;

use super::record::Record;
use crate::Result;

/// A store that keeps the whole session on the client, sealed in the
/// session cookie itself, for [`SessionLayer::client_side`](crate::SessionLayer::client_side).
///
/// Nothing is kept on the server, so any instance can serve any request
/// and losing an instance loses nothing. The price: the cookie's size limit
/// (about 4 KB), and **last-writer-wins between concurrent requests**: two
/// requests in flight each carry the cookie they were sent with, and the
/// browser keeps whichever response arrives last. A destroyed session
/// cannot be revoked on the server; its cookie stays valid until it
/// expires if a copy was kept.
pub trait ClientStore: fmt::Debug + Send + Sync + 'static {
    /// Seals `record` into a cookie value for the cookie `cookie_name`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`](crate::Error::TooLarge) when the cookie would
    /// exceed the size browsers keep; nothing is half-written, the previous
    /// cookie stays valid.
    fn seal(&self, cookie_name: &str, record: &Record) -> Result<String>;

    /// Opens a cookie value sealed by [`seal`](ClientStore::seal) for the
    /// same cookie name. Tampered, truncated, garbage, wrong-key and expired
    /// values give `None`, which starts a fresh session.
    fn open(&self, cookie_name: &str, value: &str) -> Option<Opened>;
}

/// A session opened from a cookie by [`ClientStore::open`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Opened {
    /// The session.
    pub record: Record,
    /// Whether it was sealed with a retired key and should be sealed again
    /// with the current one.
    pub reseal: bool,
}

impl Opened {
    /// A session opened from a cookie.
    pub fn new(record: Record, reseal: bool) -> Self {
        Opened { record, reseal }
    }
}
