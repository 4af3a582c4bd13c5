//! The content of a user's index: which sessions are bound to the user,
//! with their handles and how long each can live at most. Encoded into
//! the bytes of a [`UserIndex`].

use serde::Deserialize;
use time::OffsetDateTime;

use super::SessionHandle;
use crate::Id;
use crate::store::{DecodeError, EncodeError, UserIndex, from_unix_millis, unix_millis};

/// The only format so far.
const FORMAT_V1: u8 = 1;

/// One session in a user's index.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) id: Id,
    pub(crate) handle: SessionHandle,
    pub(crate) created_at: OffsetDateTime,
    /// When the session ends at the latest (its absolute lifetime), so the
    /// entry may be trimmed; `None` when nothing bounds its life (idle
    /// expiry is no bound: any request can extend it).
    pub(crate) until: Option<OffsetDateTime>,
}

impl Entry {
    fn ended(&self, now: OffsetDateTime) -> bool {
        self.until.is_some_and(|at| at <= now)
    }
}

/// A user's index: its entries, oldest session first.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Entries(pub(crate) Vec<Entry>);

type Encoded = Vec<(String, String, i64, Option<i64>)>;

impl Entries {
    pub(crate) fn decode(index: &UserIndex) -> Result<Self, DecodeError> {
        let (&format, body) = index.bytes.split_first().ok_or(DecodeError::Empty)?;
        if format != FORMAT_V1 {
            return Err(DecodeError::UnknownFormat(format));
        }
        let mut de = rmp_serde::Deserializer::from_read_ref(body);
        let raw: Encoded =
            Deserialize::deserialize(&mut de).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let bad = |what: &str| DecodeError::Malformed(format!("user index: {what}"));
        raw.into_iter()
            .map(|(id, handle, created, until)| {
                Ok(Entry {
                    id: Id::parse(&id).ok_or_else(|| bad("session ID"))?,
                    handle: handle.parse().map_err(|_| bad("handle"))?,
                    created_at: from_unix_millis(created).ok_or(DecodeError::TimeOutOfRange)?,
                    until: match until {
                        Some(ms) => Some(from_unix_millis(ms).ok_or(DecodeError::TimeOutOfRange)?),
                        None => None,
                    },
                })
            })
            .collect::<Result<_, _>>()
            .map(Entries)
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let raw: Encoded = self
            .0
            .iter()
            .map(|e| {
                (
                    e.id.as_str().to_owned(),
                    e.handle.as_str().to_owned(),
                    unix_millis(e.created_at),
                    e.until.map(unix_millis),
                )
            })
            .collect();
        let mut out = vec![FORMAT_V1];
        rmp_serde::encode::write(&mut out, &raw).map_err(|e| EncodeError::new(e.to_string()))?;
        Ok(out)
    }

    /// Adds `entry`, replacing any entry of the same session.
    pub(crate) fn upsert(&mut self, entry: Entry) {
        self.0.retain(|e| e.id != entry.id);
        let at = self.0.partition_point(|e| e.created_at <= entry.created_at);
        self.0.insert(at, entry);
    }

    pub(crate) fn remove(&mut self, ids: &[Id]) {
        self.0.retain(|e| !ids.contains(&e.id));
    }

    /// Drops the entries of sessions that have ended for sure by `now`.
    pub(crate) fn trim(&mut self, now: OffsetDateTime) {
        self.0.retain(|e| !e.ended(now));
    }

    /// When the whole index may go: once every session in it has ended.
    pub(crate) fn expires_at(&self) -> Option<OffsetDateTime> {
        self.0
            .iter()
            .map(|e| e.until)
            .try_fold(OffsetDateTime::UNIX_EPOCH, |latest, until| {
                until.map(|u| latest.max(u))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    fn entry(created_s: i64, until_s: Option<i64>) -> Entry {
        let t0 = now();
        Entry {
            id: Id::random(),
            handle: SessionHandle::random(),
            created_at: t0 + time::Duration::seconds(created_s),
            until: until_s.map(|s| t0 + time::Duration::seconds(s)),
        }
    }

    #[test]
    fn round_trip_order_trim_and_expiry() {
        let mut entries = Entries::default();
        let (a, b, c) = (entry(2, Some(10)), entry(1, Some(-1)), entry(3, Some(20)));
        entries.upsert(a.clone());
        entries.upsert(b.clone());
        entries.upsert(c.clone());
        assert_eq!(entries.0, vec![b.clone(), a.clone(), c.clone()]);
        let index = UserIndex::new(1, None, entries.encode().unwrap());
        assert_eq!(Entries::decode(&index).unwrap(), entries);
        entries.trim(now());
        assert_eq!(entries.0, vec![a.clone(), c.clone()]);
        assert_eq!(entries.expires_at(), c.until);
        entries.upsert(entry(4, None));
        assert_eq!(entries.expires_at(), None);
        entries.remove(&[a.id.clone()]);
        assert_eq!(entries.0.len(), 2);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let entries = Entries(vec![entry(0, None)]);
        let bytes = entries.encode().unwrap();
        for cut in 0..bytes.len() {
            let index = UserIndex::new(1, None, bytes[..cut].to_vec());
            assert!(Entries::decode(&index).is_err());
        }
    }
}
