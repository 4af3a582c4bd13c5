//! `SessionHandle`: the name of one of a user's sessions in listings.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes in a handle (128 bits).
const HANDLE_BYTES: usize = 16;
/// Length of the text form: 16 bytes in unpadded URL-safe base64.
const HANDLE_LEN: usize = 22;

/// A stable, opaque handle naming one of a user's sessions in listings.
///
/// It is not the session ID and cannot be turned into it: it is a random
/// value of its own, minted when the session is bound to its user
/// ([`Session::bind_user`](crate::Session::bind_user)) and kept across
/// [`Session::cycle_id`](crate::Session::cycle_id). Showing it to the user
/// (in a "your sessions" page, a URL) gives nobody a way into the session.
///
/// Its text form is URL-safe: [`Display`](fmt::Display) writes it and
/// [`FromStr`] reads it back.
///
/// ```
/// use session_core::SessionHandle;
///
/// let handle: SessionHandle = "AAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
/// assert_eq!(handle.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
/// assert!("not a handle".parse::<SessionHandle>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle(Box<str>);

impl SessionHandle {
    /// A fresh random handle.
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; HANDLE_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        SessionHandle(URL_SAFE_NO_PAD.encode(bytes).into_boxed_str())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.0)
    }
}

/// Error from parsing a [`SessionHandle`] that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed session handle")]
#[non_exhaustive]
pub struct ParseHandleError;

impl FromStr for SessionHandle {
    type Err = ParseHandleError;

    /// Accepts exactly 22 URL-safe base64 characters that decode to 16
    /// bytes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if s.len() != HANDLE_LEN || !s.bytes().all(url_safe) {
            return Err(ParseHandleError);
        }
        let mut out = [0u8; HANDLE_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(s, &mut out) {
            Ok(HANDLE_BYTES) => Ok(SessionHandle(s.into())),
            _ => Err(ParseHandleError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_handles_round_trip_and_differ() {
        let a = SessionHandle::random();
        let b = SessionHandle::random();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<SessionHandle>(), Ok(a));
    }

    #[test]
    fn malformed_handles_are_rejected() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "AAAAAAAAAAAAAAAAAAAA+A",
            "ééééééééééé",
        ] {
            assert_eq!(
                bad.parse::<SessionHandle>(),
                Err(ParseHandleError),
                "{bad:?}"
            );
        }
    }
}
