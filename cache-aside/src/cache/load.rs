//! Running the loader and turning its answers into entries.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use super::inner::Inner;
use crate::entry::{Entry, jittered, now_ms};
use crate::error::Error;
use crate::loader::Loader;
use crate::stats::bump;

/// A loader's answer for one key, and how long it took in milliseconds.
pub(super) type Loaded<V> = (Option<V>, u32);

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    /// Runs the loader for one key, timing it.
    pub(super) async fn load(&self, key: &K) -> Result<Loaded<V>, Error<L::Error>> {
        self.timed("loader", || self.loader.load(key)).await
    }

    /// Runs the batch loader once for `keys`, timing it.
    pub(super) async fn load_many(
        &self,
        keys: &[K],
    ) -> Result<(HashMap<K, V>, u32), Error<L::Error>> {
        self.timed("batch loader", || self.loader.load_many(keys))
            .await
    }

    /// Counts and times one loader call; its failure becomes
    /// [`Error::Load`].
    async fn timed<T, F>(
        &self,
        what: &str,
        call: impl FnOnce() -> F,
    ) -> Result<(T, u32), Error<L::Error>>
    where
        F: Future<Output = Result<T, L::Error>>,
    {
        bump(&self.stats.loads);
        let started = Instant::now();
        let timer = self.stats.load_latency.start();
        let answer = call().await;
        self.stats.load_latency.stop(timer, answer.is_ok());
        match answer {
            Ok(answer) => Ok((answer, elapsed_ms(started))),
            Err(error) => {
                bump(&self.stats.load_errors);
                tracing::debug!(cache = %self.settings.name, %error, "{what} failed");
                Err(Error::Load(Arc::new(error)))
            }
        }
    }

    /// The entry to store for a loaded answer, or `None` if it must not be
    /// cached (negative caching off, or a per-entry TTL of zero).
    pub(super) fn entry_for(&self, key: &K, value: Option<V>, delta_ms: u32) -> Option<Entry<V>> {
        let ttl = match &value {
            Some(v) => self
                .entry_ttl
                .as_ref()
                .and_then(|f| f(key, v))
                .unwrap_or(self.settings.ttl),
            None => self.settings.negative_ttl?,
        };
        if ttl.is_zero() {
            return None;
        }
        let ttl = jittered(ttl, self.settings.jitter);
        Some(Entry {
            value,
            expires_at_ms: now_ms()
                .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            delta_ms,
        })
    }
}

fn elapsed_ms(started: Instant) -> u32 {
    // Rounded up, so any measurable load has a non-zero delta.
    u32::try_from(started.elapsed().as_micros().div_ceil(1000)).unwrap_or(u32::MAX)
}
