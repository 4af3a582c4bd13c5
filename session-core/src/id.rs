//! Session identifiers.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Number of random bytes in an [`Id`] (128 bits).
const ID_BYTES: usize = 16;
/// Length of the encoded form: 16 bytes in unpadded URL-safe base64.
const ID_LEN: usize = 22;

/// A session identifier: 128 bits from the operating system's CSPRNG,
/// written as 22 characters of unpadded URL-safe base64 (`A–Z a–z 0–9 - _`).
///
/// The string form is what travels in the session cookie. [`Id::parse`]
/// accepts only well-formed values, so a forged or garbled cookie is turned
/// away before any store is asked about it.
///
/// ```
/// use session_core::Id;
///
/// let id = Id::random();
/// assert_eq!(id.as_str().len(), 22);
/// assert_eq!(Id::parse(id.as_str()), Some(id.clone()));
/// assert_eq!(Id::parse("not an id"), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(Box<str>);

impl Id {
    /// A fresh random identifier.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes, which on
    /// supported platforms does not happen once the system has booted. A
    /// session ID from any weaker source would be worse than no session.
    pub fn random() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Id(URL_SAFE_NO_PAD.encode(bytes).into_boxed_str())
    }

    /// Parses the cookie form of an ID, or `None` if `s` is not exactly 22
    /// URL-safe base64 characters that decode to 16 bytes.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != ID_LEN || !s.bytes().all(is_url_safe) {
            return None;
        }
        // 22 characters carry 132 bits; the last character's low bits must be
        // zero for a canonical encoding of 16 bytes.
        let mut out = [0u8; ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(s, &mut out) {
            Ok(ID_BYTES) => Some(Id(s.into())),
            _ => None,
        }
    }

    /// The ID as it is written in the cookie and in stores.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    /// Only a prefix is shown, so logs do not leak usable session IDs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({}…)", &self.0[..4])
    }
}

/// Error returned by [`Id::from_str`] for a malformed ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed session id")]
#[non_exhaustive]
pub struct ParseIdError;

impl FromStr for Id {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Id::parse(s).ok_or(ParseIdError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_ids_are_well_formed_and_unique() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = Id::random();
            assert_eq!(id.as_str().len(), ID_LEN);
            assert!(id.as_str().bytes().all(is_url_safe));
            assert_eq!(Id::parse(id.as_str()).as_ref(), Some(&id));
            assert!(seen.insert(id), "duplicate session id");
        }
    }

    #[test]
    fn ids_carry_128_random_bits() {
        // Every bit position must take both values over many IDs; a constant
        // bit would mean less entropy than claimed.
        let mut ones = [0u32; ID_BYTES * 8];
        let n = 2_000;
        for _ in 0..n {
            let mut raw = [0u8; ID_BYTES];
            URL_SAFE_NO_PAD
                .decode_slice(Id::random().as_str(), &mut raw)
                .unwrap();
            for (i, count) in ones.iter_mut().enumerate() {
                *count += u32::from(raw[i / 8] >> (i % 8) & 1);
            }
        }
        for (i, count) in ones.iter().enumerate() {
            assert!(
                (n / 4..n * 3 / 4).contains(count),
                "bit {i} set {count} times out of {n}"
            );
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let good = Id::random();
        let s = good.as_str();
        for bad in [
            "",
            "short",
            &s[..21],
            &format!("{s}A"),
            &format!("{}=", &s[..21]),
            &format!("{}+", &s[..21]),
            &format!("{}/", &s[..21]),
            "ééééééééééé",
            // Non-canonical: last character has low bits set.
            "AAAAAAAAAAAAAAAAAAAAAB",
        ] {
            assert_eq!(Id::parse(bad), None, "{bad:?} accepted");
        }
        assert_eq!(
            Id::parse("AAAAAAAAAAAAAAAAAAAAAA").map(|i| i.0.len()),
            Some(22)
        );
    }

    #[test]
    fn debug_does_not_print_the_whole_id() {
        let id = Id::random();
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.as_str()));
    }
}
