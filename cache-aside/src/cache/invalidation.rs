//! Invalidation: of one key by this instance, and of what other instances
//! announce on L2's channel.

use std::hash::Hash;

use super::inner::Inner;
use crate::error::Error;
use crate::loader::Loader;
#[cfg(feature = "redis")]
use crate::stats::bump;

impl<K, V, L> Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    /// Drops `key` from this process and from L2, and announces it.
    pub(super) async fn invalidate(&self, key: &K) -> Result<(), Error<L::Error>> {
        self.invalidate_in_process(key).await;
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            let result = l2.invalidate(key).await;
            if result.is_ok() {
                bump(&self.stats.invalidations_sent);
            }
            // Again: a fill that started between the first in-process step
            // and the Redis step may have read the old value from Redis.
            self.invalidate_in_process(key).await;
            return result.map_err(crate::l2::Failure::into_error);
        }
        Ok(())
    }

    /// Drops the L1 copy and detaches a running load in this process, so
    /// that callers from now on start afresh.
    async fn invalidate_in_process(&self, key: &K) {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.l1 {
            l1.invalidate(key).await;
        }
        self.flights.detach(key);
    }

    /// Empties L1 and detaches every running load in this process.
    #[cfg(feature = "redis")]
    fn flush_in_process(&self) {
        #[cfg(feature = "moka")]
        if let Some(l1) = &self.l1 {
            l1.flush();
        }
        self.flights.detach_all();
    }
}

#[cfg(feature = "redis")]
impl<K, V, L> crate::l2::listener::Listener for Inner<K, V, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, V>,
{
    type Key = K;
    type Value = V;

    fn l2(&self) -> &crate::l2::L2<K, V> {
        self.l2
            .as_ref()
            .expect("the listener only runs for caches with L2")
    }

    fn on_subscribed(&self) {
        // Invalidations published while we were not listening are lost.
        bump(&self.stats.l1_flushes);
        self.flush_in_process();
    }

    async fn on_message(&self, payload: &[u8]) {
        bump(&self.stats.invalidations_received);
        let key = if payload.is_empty() {
            None
        } else {
            self.l2().decode_key(payload)
        };
        match key {
            Some(key) => self.invalidate_in_process(&key).await,
            None => {
                bump(&self.stats.l1_flushes);
                self.flush_in_process();
            }
        }
    }
}
