//! Causal tokens: "this user has written up to here".
//!
//! After a write the router reads the primary's current position (a
//! PostgreSQL LSN, a MariaDB GTID position) and wraps it, together with the
//! time of the write, in a [`CausalToken`]. A later read that carries the
//! token is served by a replica only once that replica has replayed up to the
//! position; otherwise it goes to the primary. Databases without positions
//! (SQLite, and MySQL: its GTID sets are not supported, see
//! [`MYSQL_GTID_SET`]) get a token with the time only, and the router keeps
//! such reads on the primary for a configurable window.
//!
//! # String form
//!
//! Tokens travel in cookies and headers as short ASCII strings made only of
//! letters, digits, `.`, `-` and `_`, so they need no escaping:
//!
//! | token                          | meaning                                      |
//! |--------------------------------|----------------------------------------------|
//! | `v1.18c1e2a3b4f`               | written at that Unix time in ms (hex), no position |
//! | `v1.18c1e2a3b4f.l16b374d848`   | plus a PostgreSQL LSN (`16/B374D848`)        |
//! | `v1.18c1e2a3b4f.g0-1-42_1-2-7` | plus a MariaDB GTID position (two domains)   |
//!
//! ```
//! use db_router::{CausalToken, Lsn, Position};
//!
//! let token = CausalToken::new(Some(Position::Lsn(Lsn(0x16_B374_D848))));
//! let text = token.to_string();
//! assert!(text.starts_with("v1."));
//! assert_eq!(text.parse::<CausalToken>().unwrap(), token);
//!
//! // Garbage is an error, never a panic.
//! assert!("v1.zz".parse::<CausalToken>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest token string [`CausalToken::parse`] accepts.
pub const MAX_TOKEN_LEN: usize = 512;

/// The most GTID domains a token may carry.
const MAX_GTID_DOMAINS: usize = 32;

/// The version prefix of the current string form.
const VERSION: &str = "v1";

/// The [`ParseTokenError::reason`] given for a MySQL GTID set
/// (`source_uuid:1-n`): only MariaDB's `domain-server-sequence` positions
/// are supported.
pub const MYSQL_GTID_SET: &str =
    "a MySQL GTID set (source_uuid:1-n) is not supported, only MariaDB GTID positions";

/// A causal token, or a position inside one, that could not be parsed.
///
/// Returned by [`CausalToken::parse`], [`Lsn`]'s `FromStr` and
/// [`GtidPosition::parse_mariadb`]. Where a crate [`Error`](crate::Error)
/// is wanted, `?` converts it into
/// [`Error::InvalidToken`](crate::Error::InvalidToken).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseTokenError {
    reason: &'static str,
}

impl ParseTokenError {
    fn new(reason: &'static str) -> Self {
        Self { reason }
    }

    /// What was wrong with the input, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ParseTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid causal token: {}", self.reason)
    }
}

impl std::error::Error for ParseTokenError {}

/// A replication position on the primary, as understood by one database.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Position {
    /// A PostgreSQL write-ahead log location.
    Lsn(Lsn),
    /// A MariaDB global transaction id position, one entry per domain.
    Gtid(GtidPosition),
}

impl Position {
    /// Whether a server at `self` has applied everything up to `target`.
    ///
    /// Positions of different kinds never include each other.
    pub fn includes(&self, target: &Position) -> bool {
        match (self, target) {
            (Position::Lsn(have), Position::Lsn(want)) => have >= want,
            (Position::Gtid(have), Position::Gtid(want)) => have.includes(want),
            _ => false,
        }
    }

    /// How many bytes `self` is ahead of `older`, when both are LSNs.
    pub fn bytes_after(&self, older: &Position) -> Option<u64> {
        match (self, older) {
            (Position::Lsn(a), Position::Lsn(b)) => Some(a.0.saturating_sub(b.0)),
            _ => None,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Lsn(lsn) => lsn.fmt(f),
            Position::Gtid(gtid) => gtid.fmt(f),
        }
    }
}

/// A PostgreSQL log sequence number (a byte offset in the WAL).
///
/// Displays and parses in PostgreSQL's own `XXXXXXXX/XXXXXXXX` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = ParseTokenError;

    fn from_str(s: &str) -> Result<Self, ParseTokenError> {
        let (hi, lo) = s
            .split_once('/')
            .ok_or(ParseTokenError::new("LSN has no '/'"))?;
        let hi = parse_hex(hi, 8).ok_or(ParseTokenError::new("bad LSN"))?;
        let lo = parse_hex(lo, 8).ok_or(ParseTokenError::new("bad LSN"))?;
        Ok(Lsn((hi << 32) | lo))
    }
}

/// One MariaDB global transaction id: `domain-server-sequence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gtid {
    /// The replication domain.
    pub domain: u32,
    /// The server that wrote the transaction.
    pub server: u32,
    /// The sequence number within the domain.
    pub sequence: u64,
}

/// A MariaDB GTID position: the last transaction of each replication
/// domain, as in `@@gtid_binlog_pos` or `@@gtid_slave_pos`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GtidPosition {
    entries: Vec<Gtid>,
}

impl GtidPosition {
    /// Builds a position from its entries; a later entry for the same domain
    /// replaces an earlier one.
    pub fn new(entries: impl IntoIterator<Item = Gtid>) -> Self {
        let mut out: Vec<Gtid> = Vec::new();
        for gtid in entries {
            match out.iter_mut().find(|g| g.domain == gtid.domain) {
                Some(slot) => *slot = gtid,
                None => out.push(gtid),
            }
        }
        out.sort_by_key(|g| g.domain);
        Self { entries: out }
    }

    /// The entries, sorted by domain.
    pub fn entries(&self) -> &[Gtid] {
        &self.entries
    }

    /// Whether a server at `self` has applied every domain of `target` up
    /// to its sequence number.
    pub fn includes(&self, target: &GtidPosition) -> bool {
        target.entries.iter().all(|want| {
            self.entries
                .iter()
                .any(|have| have.domain == want.domain && have.sequence >= want.sequence)
        })
    }

    /// Parses MariaDB's comma-separated form (`0-1-42,1-2-7`). An empty
    /// string (binary log off, nothing replicated) gives `Ok(None)`.
    ///
    /// MySQL's GTID sets (`3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5`) are
    /// not supported and are refused with their own reason
    /// ([`MYSQL_GTID_SET`]): see the crate's README on MySQL.
    ///
    /// # Errors
    ///
    /// [`ParseTokenError`] for anything else.
    pub fn parse_mariadb(s: &str) -> Result<Option<Self>, ParseTokenError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.contains(':') {
            return Err(ParseTokenError::new(MYSQL_GTID_SET));
        }
        parse_gtids(s.split(',').map(str::trim)).map(Some)
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}-{}-{}", g.domain, g.server, g.sequence)?;
        }
        Ok(())
    }
}

fn parse_gtids<'a>(parts: impl Iterator<Item = &'a str>) -> Result<GtidPosition, ParseTokenError> {
    let mut entries = Vec::new();
    for part in parts {
        if entries.len() == MAX_GTID_DOMAINS {
            return Err(ParseTokenError::new("too many GTID domains"));
        }
        let mut fields = part.split('-');
        let (Some(d), Some(s), Some(n), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(ParseTokenError::new("GTID is not domain-server-sequence"));
        };
        let bad = || ParseTokenError::new("bad GTID number");
        let domain = parse_dec(d, 10).and_then(|v| u32::try_from(v).ok());
        let server = parse_dec(s, 10).and_then(|v| u32::try_from(v).ok());
        let sequence = parse_dec(n, 20);
        entries.push(Gtid {
            domain: domain.ok_or_else(bad)?,
            server: server.ok_or_else(bad)?,
            sequence: sequence.ok_or_else(bad)?,
        });
    }
    if entries.is_empty() {
        return Err(ParseTokenError::new("empty GTID position"));
    }
    Ok(GtidPosition::new(entries))
}

/// Proof of a write: the primary's position right after it, and when it
/// happened.
///
/// See the [module documentation](self) for the string form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CausalToken {
    written_at_ms: u64,
    position: Option<Position>,
}

impl CausalToken {
    /// A token for a write that happened now, at `position` (if the
    /// database reports one).
    pub fn new(position: Option<Position>) -> Self {
        Self::with_written_at(position, SystemTime::now())
    }

    /// A token for a write at a given time (millisecond precision).
    pub fn with_written_at(position: Option<Position>, written_at: SystemTime) -> Self {
        let written_at_ms = written_at
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            written_at_ms,
            position,
        }
    }

    /// The primary's position after the write, if the database has one.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// When the write happened.
    pub fn written_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.written_at_ms)
    }

    /// Time since the write; zero when the write time is in the future.
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.written_at())
            .unwrap_or(Duration::ZERO)
    }

    /// Parses the string form. Same as `s.parse()`.
    ///
    /// # Errors
    ///
    /// [`ParseTokenError`] for anything that is not a well-formed token of
    /// a known version; this never panics.
    pub fn parse(s: &str) -> Result<Self, ParseTokenError> {
        if s.len() > MAX_TOKEN_LEN {
            return Err(ParseTokenError::new("too long"));
        }
        let mut parts = s.split('.');
        match parts.next() {
            Some(VERSION) => {}
            Some(v) if v.starts_with('v') => {
                return Err(ParseTokenError::new("unsupported version"));
            }
            _ => return Err(ParseTokenError::new("missing version prefix")),
        }
        let written_at_ms = parts
            .next()
            .and_then(|t| parse_hex(t, 16))
            .ok_or(ParseTokenError::new("bad write time"))?;
        let position = match parts.next() {
            None => None,
            Some(pos) => Some(parse_position(pos)?),
        };
        if parts.next().is_some() {
            return Err(ParseTokenError::new("trailing data"));
        }
        Ok(Self {
            written_at_ms,
            position,
        })
    }
}

fn parse_position(pos: &str) -> Result<Position, ParseTokenError> {
    if let Some(hex) = pos.strip_prefix('l') {
        let lsn = parse_hex(hex, 16).ok_or(ParseTokenError::new("bad LSN"))?;
        Ok(Position::Lsn(Lsn(lsn)))
    } else if let Some(list) = pos.strip_prefix('g') {
        parse_gtids(list.split('_')).map(Position::Gtid)
    } else {
        Err(ParseTokenError::new("unknown position kind"))
    }
}

impl fmt::Display for CausalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{VERSION}.{:x}", self.written_at_ms)?;
        match &self.position {
            None => Ok(()),
            Some(Position::Lsn(lsn)) => write!(f, ".l{:x}", lsn.0),
            Some(Position::Gtid(gtid)) => {
                f.write_str(".g")?;
                for (i, g) in gtid.entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str("_")?;
                    }
                    write!(f, "{}-{}-{}", g.domain, g.server, g.sequence)?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for CausalToken {
    type Err = ParseTokenError;

    fn from_str(s: &str) -> Result<Self, ParseTokenError> {
        Self::parse(s)
    }
}

/// Hex digits only (no sign, no prefix), 1 to `max_len` of them.
fn parse_hex(s: &str, max_len: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Decimal digits only (no sign), 1 to `max_len` of them.
fn parse_dec(s: &str, max_len: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let tokens = [
            CausalToken::new(None),
            CausalToken::new(Some(Position::Lsn(Lsn(0)))),
            CausalToken::new(Some(Position::Lsn(Lsn(u64::MAX)))),
            CausalToken::new(Some(Position::Gtid(GtidPosition::new([
                Gtid {
                    domain: 1,
                    server: 2,
                    sequence: 7,
                },
                Gtid {
                    domain: 0,
                    server: 1,
                    sequence: 42,
                },
            ])))),
        ];
        for token in tokens {
            let text = token.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{text}"
            );
            assert_eq!(CausalToken::parse(&text).unwrap(), token, "{text}");
        }
    }

    #[test]
    fn lsn_text_form() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16_B374_D848));
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("+1/2".parse::<Lsn>().is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "v1",
            "v1.",
            "v2.10",
            "x1.10",
            "v1.+10",
            "v1.10.",
            "v1.10.l",
            "v1.10.l-1",
            "v1.10.lzz",
            "v1.10.l12345678901234567",
            "v1.10.q12",
            "v1.10.g",
            "v1.10.g1-2",
            "v1.10.g1-2-3-4",
            "v1.10.g1-2-x",
            "v1.10.g99999999999-1-1",
            "v1.10.l10.extra",
            "v1.10000000000000000",
        ] {
            assert!(CausalToken::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(CausalToken::parse(&"v1.1".repeat(200)).is_err());
    }

    #[test]
    fn gtid_inclusion() {
        let have = GtidPosition::parse_mariadb("0-1-42,1-2-7")
            .unwrap()
            .unwrap();
        let want = GtidPosition::parse_mariadb("0-9-40").unwrap().unwrap();
        assert!(have.includes(&want));
        let want = GtidPosition::parse_mariadb("0-1-43").unwrap().unwrap();
        assert!(!have.includes(&want));
        let want = GtidPosition::parse_mariadb("2-1-1").unwrap().unwrap();
        assert!(!have.includes(&want));
        assert_eq!(GtidPosition::parse_mariadb("").unwrap(), None);
        assert_eq!(have.to_string(), "0-1-42,1-2-7");
    }

    #[test]
    fn mysql_gtid_sets_are_refused_by_name() {
        for mysql in [
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:11-18,\n2174B383-5441-11E8-B90A-C80AA9429562:1-3",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23",
        ] {
            let err = GtidPosition::parse_mariadb(mysql).unwrap_err();
            assert_eq!(err.reason(), MYSQL_GTID_SET, "{mysql:?}");
        }
    }

    #[test]
    fn positions_of_other_kinds_do_not_compare() {
        let lsn = Position::Lsn(Lsn(5));
        let gtid = Position::Gtid(GtidPosition::parse_mariadb("0-1-1").unwrap().unwrap());
        assert!(!lsn.includes(&gtid));
        assert!(!gtid.includes(&lsn));
        assert!(lsn.includes(&Position::Lsn(Lsn(5))));
        assert!(!lsn.includes(&Position::Lsn(Lsn(6))));
    }
}
