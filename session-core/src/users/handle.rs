//! `SessionHandle`: the name of one of a user's sessions in listings.

use std::fmt;
use std::str::FromStr;

use crate::Id;

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
pub struct SessionHandle(Id);

impl SessionHandle {
    /// A fresh random handle: 128 bits from the OS CSPRNG, drawn apart
    /// from the session ID (the same form, nothing else in common).
    pub(crate) fn random() -> Self {
        SessionHandle(Id::random())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.as_str())
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
        Id::parse(s).map(SessionHandle).ok_or(ParseHandleError)
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
