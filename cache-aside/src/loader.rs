//! The source of truth behind a cache.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;

/// Loads values from the source of truth (usually the database) on a miss.
///
/// `load` returns `Ok(None)` when the key does not exist; the cache then
/// stores a *negative* entry (see
/// [`CacheBuilder::with_negative_ttl`](crate::CacheBuilder::with_negative_ttl))
/// so that repeated lookups of a missing row do not reach the database.
///
/// Implement the trait for a type that owns a database pool, or wrap an async
/// closure with [`from_fn`].
///
/// ```
/// use std::collections::HashMap;
/// use cache_aside::Loader;
///
/// struct Products; // would hold a connection pool
///
/// impl Loader<u64, String> for Products {
///     type Error = std::io::Error;
///
///     async fn load(&self, id: &u64) -> Result<Option<String>, Self::Error> {
///         Ok((*id < 100).then(|| format!("product {id}")))
///     }
///
///     // One query for a batch: `SELECT … WHERE id = ANY($1)`.
///     async fn load_many(&self, ids: &[u64]) -> Result<HashMap<u64, String>, Self::Error> {
///         Ok(ids.iter().filter(|id| **id < 100).map(|id| (*id, format!("product {id}"))).collect())
///     }
/// }
/// ```
pub trait Loader<K, V>: Send + Sync + 'static {
    /// The loader's error. It reaches callers as
    /// [`Error::Load`](crate::Error::Load) and is never cached.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Loads one key; `Ok(None)` means the key does not exist.
    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>, Self::Error>> + Send;

    /// Loads several keys at once for [`Cache::get_many`](crate::Cache::get_many).
    /// Keys absent from the returned map do not exist.
    ///
    /// The default calls [`load`](Loader::load) for each key in turn; override
    /// it with a single batched query.
    fn load_many(
        &self,
        keys: &[K],
    ) -> impl Future<Output = Result<HashMap<K, V>, Self::Error>> + Send
    where
        K: Hash + Eq + Clone + Send + Sync,
        V: Send,
    {
        async move {
            let mut found = HashMap::with_capacity(keys.len());
            for key in keys {
                if let Some(value) = self.load(key).await? {
                    found.insert(key.clone(), value);
                }
            }
            Ok(found)
        }
    }
}

/// A [`Loader`] made from an async closure; see [`from_fn`].
#[derive(Clone, Copy)]
pub struct FnLoader<F> {
    f: F,
}

impl<F> fmt::Debug for FnLoader<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnLoader").finish_non_exhaustive()
    }
}

/// Turns an async closure `Fn(K) -> Future<Output = Result<Option<V>, E>>`
/// into a [`Loader`]. The closure receives a clone of the key.
///
/// ```
/// let loader = cache_aside::from_fn(|id: u64| async move {
///     Ok::<_, std::io::Error>(Some(format!("product {id}")))
/// });
/// # let _ = loader;
/// ```
pub fn from_fn<F>(f: F) -> FnLoader<F> {
    FnLoader { f }
}

impl<K, V, E, F, Fut> Loader<K, V> for FnLoader<F>
where
    K: Clone,
    F: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<V>, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    type Error = E;

    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>, E>> + Send {
        (self.f)(key.clone())
    }
}
