//! Decoded session values kept across requests, for
//! [`Session::get_shared`](crate::Session::get_shared): a value read again
//! with the same stored bytes is not decoded again.
//!
//! An entry is used only when the value's current bytes equal the bytes it
//! was decoded from, so it can never be stale: a write from any instance
//! changes the bytes the next request loads, and the value is decoded
//! afresh. The cache is bounded by the encoded size of the values it
//! holds.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::DeserializeOwned;

use crate::store::{Value, ValueError};
use crate::{Id, metrics};

/// The default bound: 8 MiB of encoded values.
pub(crate) const DEFAULT_MAX_BYTES: usize = 8 << 20;

/// What an entry is counted for besides its value's bytes, its key and
/// its session's ID: its share of the maps and the decoded value's
/// allocation, so that many small values stay bounded too.
const ENTRY_OVERHEAD: usize = 128;

/// Decoded values by session and key, shared by every request of one
/// layer (and by its clones).
pub(crate) struct SharedValues {
    max_bytes: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_session: HashMap<Id, Vec<Entry>>,
    /// The sum of the entries' weights.
    bytes: usize,
}

struct Entry {
    key: Box<str>,
    /// What `decoded` was decoded from.
    encoded: Value,
    decoded: Arc<dyn Any + Send + Sync>,
    /// What the entry counts against the bound.
    weight: usize,
}

/// What an entry for session `id`'s `key` holding `value` counts against
/// the bound.
fn weight(id: &Id, key: &str, value: &Value) -> usize {
    value.as_bytes().len() + key.len() + id.as_str().len() + ENTRY_OVERHEAD
}

impl SharedValues {
    /// A cache of at most `max_bytes` of encoded values; `0` keeps none.
    pub(crate) fn new(max_bytes: usize) -> Self {
        SharedValues {
            max_bytes,
            entries: Mutex::default(),
        }
    }

    /// `value` (session `id`'s `key`) decoded as `T`: the value decoded
    /// earlier when it had the same bytes and was read as `T`, otherwise
    /// decoded now and kept. Without an `id` (a session not stored yet)
    /// nothing is kept.
    pub(crate) fn get_or_decode<T>(
        &self,
        id: Option<&Id>,
        key: &str,
        value: &Value,
    ) -> Result<Arc<T>, ValueError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let Some(id) = id.filter(|id| weight(id, key, value) <= self.max_bytes) else {
            return value.get::<T>().map(Arc::new);
        };
        if let Some(hit) = self.lookup::<T>(id, key, value) {
            metrics::shared_value_read("kept");
            return Ok(hit);
        }
        metrics::shared_value_read("decoded");
        let decoded = Arc::new(value.get::<T>()?);
        self.keep(id, key, value, decoded.clone());
        Ok(decoded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries stay consistent whatever panicked while holding the
        // lock: every change is a single insert or remove.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup<T: Send + Sync + 'static>(
        &self,
        id: &Id,
        key: &str,
        value: &Value,
    ) -> Option<Arc<T>> {
        let entries = self.lock();
        let entry = entries
            .by_session
            .get(id)?
            .iter()
            .find(|e| &*e.key == key)?;
        if entry.encoded != *value {
            return None;
        }
        entry.decoded.clone().downcast::<T>().ok()
    }

    fn keep(&self, id: &Id, key: &str, value: &Value, decoded: Arc<dyn Any + Send + Sync>) {
        let size = weight(id, key, value);
        let mut entries = self.lock();
        let entries = &mut *entries;
        let session = entries.by_session.entry(id.clone()).or_default();
        match session.iter_mut().find(|e| &*e.key == key) {
            Some(entry) => {
                entries.bytes -= entry.weight;
                entry.encoded = value.clone();
                entry.decoded = decoded;
                entry.weight = size;
            }
            None => session.push(Entry {
                key: key.into(),
                encoded: value.clone(),
                decoded,
                weight: size,
            }),
        }
        entries.bytes += size;
        // Over the bound: drop other sessions' values, in no particular
        // order, until it holds. The one just kept stays.
        while entries.bytes > self.max_bytes {
            let Some(other) = entries.by_session.keys().find(|k| *k != id).cloned() else {
                break;
            };
            if let Some(dropped) = entries.by_session.remove(&other) {
                entries.bytes -= dropped.iter().map(|e| e.weight).sum::<usize>();
            }
        }
    }

    /// The weight of the entries kept.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl fmt::Debug for SharedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedValues")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<T: serde::Serialize>(v: &T) -> Value {
        Value::new(v).unwrap()
    }

    #[test]
    fn unchanged_bytes_give_the_value_decoded_before() {
        let cache = SharedValues::new(DEFAULT_MAX_BYTES);
        let id = Id::random();
        let v = value(&vec!["a".to_owned(), "b".to_owned()]);
        let first = cache
            .get_or_decode::<Vec<String>>(Some(&id), "cart", &v)
            .unwrap();
        let second = cache
            .get_or_decode::<Vec<String>>(Some(&id), "cart", &v.clone())
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(*second, ["a", "b"]);
    }

    #[test]
    fn changed_bytes_are_decoded_again() {
        let cache = SharedValues::new(DEFAULT_MAX_BYTES);
        let id = Id::random();
        cache
            .get_or_decode::<Vec<u32>>(Some(&id), "cart", &value(&vec![1]))
            .unwrap();
        let now = cache
            .get_or_decode::<Vec<u32>>(Some(&id), "cart", &value(&vec![1, 2]))
            .unwrap();
        assert_eq!(*now, [1, 2]);
        assert_eq!(cache.bytes(), weight(&id, "cart", &value(&vec![1, 2])));
    }

    #[test]
    fn sessions_and_keys_are_apart() {
        let cache = SharedValues::new(DEFAULT_MAX_BYTES);
        let (a, b) = (Id::random(), Id::random());
        let one = value(&1u32);
        let x = cache.get_or_decode::<u32>(Some(&a), "n", &one).unwrap();
        let y = cache.get_or_decode::<u32>(Some(&b), "n", &one).unwrap();
        let z = cache.get_or_decode::<u32>(Some(&a), "m", &one).unwrap();
        assert!(!Arc::ptr_eq(&x, &y) && !Arc::ptr_eq(&x, &z));
    }

    #[test]
    fn another_type_is_decoded_as_that_type() {
        let cache = SharedValues::new(DEFAULT_MAX_BYTES);
        let id = Id::random();
        let v = value(&7u8);
        assert_eq!(*cache.get_or_decode::<u8>(Some(&id), "n", &v).unwrap(), 7);
        assert_eq!(*cache.get_or_decode::<u64>(Some(&id), "n", &v).unwrap(), 7);
        let err = cache.get_or_decode::<String>(Some(&id), "n", &v);
        assert!(err.is_err(), "a number read as a string");
    }

    #[test]
    fn the_bound_holds() {
        let one = value(&"x".repeat(100));
        let ids: Vec<Id> = (0..10).map(|_| Id::random()).collect();
        let size = weight(&ids[0], "k", &one);
        let cache = SharedValues::new(size * 3);
        for id in &ids {
            cache.get_or_decode::<String>(Some(id), "k", &one).unwrap();
            assert!(cache.bytes() <= size * 3, "{} bytes kept", cache.bytes());
        }
        // The value just read is kept.
        let last = ids.last().unwrap();
        let a = cache
            .get_or_decode::<String>(Some(last), "k", &one)
            .unwrap();
        let b = cache
            .get_or_decode::<String>(Some(last), "k", &one)
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn nothing_is_kept_without_an_id_or_room() {
        let v = value(&1u32);
        let cache = SharedValues::new(DEFAULT_MAX_BYTES);
        let a = cache.get_or_decode::<u32>(None, "n", &v).unwrap();
        let b = cache.get_or_decode::<u32>(None, "n", &v).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        let off = SharedValues::new(0);
        let id = Id::random();
        let a = off.get_or_decode::<u32>(Some(&id), "n", &v).unwrap();
        let b = off.get_or_decode::<u32>(Some(&id), "n", &v).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(off.bytes(), 0);
    }
}
