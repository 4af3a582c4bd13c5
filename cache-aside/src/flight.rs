//! Per-process single-flight: concurrent misses of one key share one load.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::error::Error;

/// What a finished flight hands to everyone who joined it.
pub(crate) type Outcome<V, E> = Result<Option<V>, Error<E>>;

type Slot<V, E> = Arc<watch::Sender<Option<Outcome<V, E>>>>;

/// The table of loads in progress, one per key.
pub(crate) struct Flights<K, V, E> {
    table: Mutex<HashMap<K, Slot<V, E>>>,
}

/// The caller's part in a flight.
pub(crate) enum Role<'a, K: Hash + Eq, V, E> {
    /// Run the load and then call [`Leader::finish`].
    Leader(Leader<'a, K, V, E>),
    /// Wait for the leader with [`Follower::wait`].
    Follower(Follower<V, E>),
}

impl<K: Hash + Eq + Clone, V: Clone, E> Flights<K, V, E> {
    pub(crate) fn new() -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Slot<V, E>>> {
        // The table holds no invariant a panic could break half-way.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: &K) -> Role<'_, K, V, E> {
        let mut table = self.lock();
        if let Some(slot) = table.get(key) {
            return Role::Follower(Follower {
                rx: slot.subscribe(),
            });
        }
        Role::Leader(self.start(&mut table, key))
    }

    /// Starts a flight only if none is running for `key` (early refresh of
    /// an L1 entry).
    #[cfg(feature = "moka")]
    pub(crate) fn try_lead(&self, key: &K) -> Option<Leader<'_, K, V, E>> {
        let mut table = self.lock();
        if table.contains_key(key) {
            return None;
        }
        Some(self.start(&mut table, key))
    }

    fn start(&self, table: &mut HashMap<K, Slot<V, E>>, key: &K) -> Leader<'_, K, V, E> {
        let (tx, _) = watch::channel(None);
        let slot = Arc::new(tx);
        table.insert(key.clone(), Arc::clone(&slot));
        Leader {
            flights: self,
            key: key.clone(),
            slot,
        }
    }

    /// Detaches the flight for `key`, if any: callers arriving later start a
    /// fresh load instead of joining one that began before an invalidation.
    pub(crate) fn detach(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Detaches every flight (when L2's invalidations may have been missed).
    #[cfg(feature = "redis")]
    pub(crate) fn detach_all(&self) {
        self.lock().clear();
    }
}

/// The caller that runs the load. Dropping it without [`finish`](Self::finish)
/// (the caller was cancelled) releases the followers, who then retry.
pub(crate) struct Leader<'a, K: Hash + Eq, V, E> {
    flights: &'a Flights<K, V, E>,
    key: K,
    slot: Slot<V, E>,
}

impl<K: Hash + Eq + Clone, V: Clone, E> Leader<'_, K, V, E> {
    /// Publishes the outcome to every follower.
    pub(crate) fn finish(self, outcome: &Outcome<V, E>) {
        self.slot.send_replace(Some(outcome.clone()));
        // `Drop` removes the table entry.
    }
}

impl<K: Hash + Eq, V, E> Drop for Leader<'_, K, V, E> {
    fn drop(&mut self) {
        let mut table = self
            .flights
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if table
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            table.remove(&self.key);
        }
    }
}

/// A caller waiting for someone else's load.
pub(crate) struct Follower<V, E> {
    rx: watch::Receiver<Option<Outcome<V, E>>>,
}

impl<V: Clone, E> Follower<V, E> {
    /// The leader's outcome, or `None` if the leader was cancelled.
    pub(crate) async fn wait(mut self) -> Option<Outcome<V, E>> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_share_the_leader_outcome() {
        let flights: Flights<u32, u32, std::io::Error> = Flights::new();
        let Role::Leader(leader) = flights.join(&1) else {
            panic!("first caller must lead")
        };
        let Role::Follower(follower) = flights.join(&1) else {
            panic!("second caller must follow")
        };
        leader.finish(&Ok(Some(7)));
        assert_eq!(follower.wait().await.unwrap().unwrap(), Some(7));
        assert!(matches!(flights.join(&1), Role::Leader(_)));
    }

    #[tokio::test]
    #[cfg(feature = "moka")]
    async fn cancelled_leader_releases_followers() {
        let flights: Flights<u32, u32, std::io::Error> = Flights::new();
        let leader = flights.try_lead(&1).unwrap();
        assert!(flights.try_lead(&1).is_none());
        let Role::Follower(follower) = flights.join(&1) else {
            panic!("must follow")
        };
        drop(leader);
        assert!(follower.wait().await.is_none());
    }

    #[tokio::test]
    #[cfg(feature = "moka")]
    async fn detached_flight_is_not_joined() {
        let flights: Flights<u32, u32, std::io::Error> = Flights::new();
        let old = flights.try_lead(&1).unwrap();
        flights.detach(&1);
        let new = flights
            .try_lead(&1)
            .expect("detached flight must not block a new one");
        drop(old); // must not remove the new flight
        assert!(flights.try_lead(&1).is_none());
        drop(new);
    }
}
