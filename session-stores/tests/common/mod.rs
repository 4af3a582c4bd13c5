//! What the tests of the server-side stores share: building records,
//! reading the session ID out of a cookie, and the error for a record of
//! an unknown format.

use std::time::Duration;

use session_core::store::{Data, Record, now};
use session_core::{Error, Id};

/// A record with a random ID holding `data`, expiring after `ttl`.
pub(crate) fn record(data: &[(&str, serde_json::Value)], ttl: Option<Duration>) -> Record {
    let data: Data = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.into()))
        .collect();
    let now = now();
    Record::new(Id::random(), data, now, ttl.map(|t| now + t))
}

/// The session ID in a `name=value` cookie.
///
/// # Panics
///
/// If the value is no session ID.
pub(crate) fn cookie_id(cookie: &str) -> Id {
    cookie
        .split_once('=')
        .and_then(|(_, v)| Id::parse(v))
        .expect("a session cookie")
}

/// Asserts that `err` is a decode error that names the unknown record
/// format.
pub(crate) fn assert_unknown_format(err: &Error) {
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(
        err.to_string().contains("unknown session record format"),
        "{err}"
    );
}
