//! Reading many keys at once: L1, then one `MGET` in L2, then one batch
//! load for the rest.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use super::inner::{Inner, L1Snapshot};
use crate::entry::Entry;
use crate::error::Error;
use crate::loader::Loader;
#[cfg(any(feature = "moka", feature = "redis"))]
use crate::stats::bump;

/// A key still to load, by its index in the pending keys, with the L2
/// generation seen before loading (`None`: L2 is not used for this batch).
type Missing = (usize, Option<String>);

/// A loaded key: a [`Missing`] key and the entry to store (`None`: not to be
/// cached).
type Loaded<V> = (usize, Option<String>, Option<Entry<V>>);

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    pub(super) async fn get_many(&self, keys: Vec<K>) -> Result<HashMap<K, V>, Error<L::Error>> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut seen = HashSet::with_capacity(keys.len());
        let mut pending = Vec::new();
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            #[cfg(feature = "moka")]
            if let Some(l1) = &self.l1 {
                if let Some(entry) = l1.get(&key).await {
                    bump(&self.stats.l1_hits);
                    match entry.value {
                        Some(value) => {
                            found.insert(key, value);
                        }
                        None => bump(&self.stats.negative_hits),
                    }
                    continue;
                }
                bump(&self.stats.l1_misses);
            }
            pending.push(key);
        }
        if pending.is_empty() {
            return Ok(found);
        }
        let snaps: Vec<L1Snapshot> = pending.iter().map(|k| self.l1_snapshot(k)).collect();

        let missing = self.read_l2_many(&pending, &snaps, &mut found).await?;
        if missing.is_empty() {
            return Ok(found);
        }

        let to_load: Vec<K> = missing.iter().map(|(i, _)| pending[*i].clone()).collect();
        let (mut loaded, delta) = self.load_many(&to_load).await?;
        let entries: Vec<Loaded<V>> = missing
            .into_iter()
            .map(|(i, generation)| {
                let value = loaded.remove(&pending[i]);
                (i, generation, self.entry_for(&pending[i], value, delta))
            })
            .collect();

        let keep = self.fill_l2_many(&pending, &entries).await;
        for ((i, generation, entry), keep) in entries.into_iter().zip(keep) {
            let Some(entry) = entry else { continue };
            // Sent to L2 (a generation was read): its fill counted a loss.
            if generation.is_some() {
                if keep {
                    self.l1_store(&pending[i], &entry, snaps[i]).await;
                }
            } else {
                self.l1_fill(&pending[i], &entry, snaps[i]).await;
            }
            if let Some(value) = entry.value {
                found.insert(pending[i].clone(), value);
            }
        }
        Ok(found)
    }

    /// Reads `pending` from L2 with one `MGET`, moving hits into `found` (and
    /// L1); returns the keys still to load.
    #[cfg(feature = "redis")]
    async fn read_l2_many(
        &self,
        pending: &[K],
        snaps: &[L1Snapshot],
        found: &mut HashMap<K, V>,
    ) -> Result<Vec<Missing>, Error<L::Error>> {
        use crate::l2::Lookup;
        use crate::settings::FailMode;

        let all = || (0..pending.len()).map(|i| (i, None)).collect();
        let Some(l2) = &self.l2 else {
            return Ok(all());
        };
        let lookups = match l2.check_available() {
            Ok(()) => l2.get_many(pending).await,
            Err(failure) => Err(failure),
        };
        let rows = match lookups {
            Ok(rows) => rows,
            Err(failure) => {
                if l2.fail_mode() == FailMode::Closed {
                    return Err(failure.into_error());
                }
                bump(&self.stats.fail_open);
                return Ok(all());
            }
        };
        let mut missing = Vec::new();
        for (i, (lookup, generation)) in rows.into_iter().enumerate() {
            match lookup {
                Lookup::Hit(entry) => {
                    bump(&self.stats.l2_hits);
                    self.l1_store(&pending[i], &entry, snaps[i]).await;
                    match entry.value {
                        Some(value) => {
                            found.insert(pending[i].clone(), value);
                        }
                        None => bump(&self.stats.negative_hits),
                    }
                }
                Lookup::Miss => {
                    bump(&self.stats.l2_misses);
                    missing.push((i, Some(generation)));
                }
            }
        }
        Ok(missing)
    }

    /// Without L2, every pending key is still to load.
    #[cfg(not(feature = "redis"))]
    async fn read_l2_many(
        &self,
        pending: &[K],
        _snaps: &[L1Snapshot],
        _found: &mut HashMap<K, V>,
    ) -> Result<Vec<Missing>, Error<L::Error>> {
        Ok((0..pending.len()).map(|i| (i, None)).collect())
    }

    /// Stores the loaded entries in L2 where the generation did not move;
    /// returns, per entry, whether it may go to L1 (Redis did not refuse it).
    #[cfg(feature = "redis")]
    async fn fill_l2_many(&self, pending: &[K], entries: &[Loaded<V>]) -> Vec<bool> {
        let mut keep = vec![true; entries.len()];
        let Some(l2) = &self.l2 else {
            return keep;
        };
        let mut items = Vec::new();
        let mut positions = Vec::new();
        for (n, (i, generation, entry)) in entries.iter().enumerate() {
            if let (Some(generation), Some(entry)) = (generation, entry) {
                items.push((&pending[*i], entry, generation.as_str()));
                positions.push(n);
            }
        }
        if !items.is_empty()
            && let Ok(stored) = l2.fill(&items, None).await
        {
            for (n, ok) in positions.into_iter().zip(stored) {
                if !ok {
                    keep[n] = false;
                    self.fill_lost();
                }
            }
        }
        keep
    }

    /// Without L2, every entry may go to L1.
    #[cfg(not(feature = "redis"))]
    async fn fill_l2_many(&self, _pending: &[K], entries: &[Loaded<V>]) -> Vec<bool> {
        vec![true; entries.len()]
    }
}
