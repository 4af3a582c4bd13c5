//! The `Session` handle that handlers use.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, MutexGuard};

use crate::config::Config;
use crate::cookie_header::CookieAction;
use crate::metrics;
use crate::persistence::{CookieChange, Incoming, Origin, Persistence, Write};
use crate::store::{Data, DecodeError, Record, Value, now};
use crate::{Error, Id, Result};

/// The session of the current request.
///
/// The [`SessionLayer`](crate::SessionLayer) puts one into every request's
/// extensions; with the `axum` feature it is also an extractor. Cloning is
/// cheap and every clone sees the same state.
///
/// Nothing is read from the store until a method needs the data, and
/// nothing is written unless the data changed:
///
/// - [`get`](Session::get), [`insert`](Session::insert) and
///   [`remove`](Session::remove) work on the request's view of the session;
///   changes are saved when the response is produced.
/// - [`update`](Session::update) is an atomic read-modify-write that is
///   saved at once and re-applied on fresh data if another request saved in
///   between, so concurrent updates of one key never lose each other.
///
/// # Concurrent requests
///
/// Saves are compare-and-set on the record's version. When a save at the
/// end of a request finds that another request saved first, the session is
/// reloaded and this request's changes are re-applied key by key: changes
/// to different keys merge. Two plain `insert`s of the *same* key are
/// last-writer-wins for that key; use `update` when the new value depends on
/// the old one (counters, carts).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    persistence: Arc<dyn Persistence>,
    config: Arc<Config>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The request's session cookie: a well-formed ID (server-side
    /// stores) or a sealed session (client-side stores), not yet checked.
    incoming: Option<Incoming>,
    loaded: bool,
    /// Loading failed earlier in this request: later calls fail at once
    /// instead of waiting for the store's timeout again.
    load_failed: bool,
    /// A store call failed or timed out in this request (for the metric
    /// of `503`s the store caused).
    store_failed: bool,
    /// The record as last loaded or saved, for its ID, version and times;
    /// `None` for a new session. Its `data` is always empty: the data
    /// live in `data` alone, so they are not copied on every load.
    base: Option<Record>,
    /// Which store holds `base` (during a store migration, the new one or
    /// the one being left).
    origin: Origin,
    /// The data as last loaded or saved, with `changes` applied.
    data: Data,
    /// Changes not yet saved: `Some` sets a key, `None` removes it.
    changes: BTreeMap<String, Option<Value>>,
    /// The response must carry the session cookie (a new value or a new
    /// Max-Age).
    send_cookie: bool,
    /// The response must remove the session cookie.
    remove_cookie: bool,
    /// The cookie value the last write already made (client-side stores:
    /// `base` sealed); `None`: made from `base` when the response is
    /// finished.
    cookie_value: Option<String>,
}

impl State {
    /// Takes note of how a write changed the cookie.
    fn apply(&mut self, change: CookieChange, persistent_cookie: bool) {
        self.cookie_value = change.value;
        // A persistent cookie's Max-Age follows the new expiry.
        self.send_cookie |= change.value_changed || persistent_cookie;
    }
}

impl Session {
    pub(crate) fn new(
        persistence: Arc<dyn Persistence>,
        config: Arc<Config>,
        incoming: Option<Incoming>,
    ) -> Self {
        Session {
            inner: Arc::new(Inner {
                persistence,
                config,
                state: Mutex::new(State {
                    incoming,
                    ..State::default()
                }),
            }),
        }
    }

    /// Reads `key`, deserialized as `T`.
    ///
    /// # Errors
    ///
    /// A store failure while loading the session, or a stored value that
    /// does not deserialize as `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let st = self.loaded().await?;
        st.data
            .get(key)
            .map(|v| v.get::<T>().map_err(Error::from))
            .transpose()
    }

    /// Reads `key`, deserialized as `T`, as a shared value: a value that
    /// has not changed since this process last read it as `T` is not
    /// decoded again, and handlers that only read it skip the copy.
    ///
    /// The layer keeps the decoded values, bounded by
    /// [`with_shared_values`](crate::SessionLayer::with_shared_values). A
    /// kept value is used only while its stored bytes are the ones it was
    /// decoded from, so a write from any instance, or from this request,
    /// is always seen. Use it for values that are read far more often
    /// than written, such as a cart shown on every page.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use session_core::Session;
    ///
    /// async fn cart_badge(session: Session) -> session_core::Result<String> {
    ///     let cart: Option<Arc<Vec<String>>> = session.get_shared("cart").await?;
    ///     Ok(format!("{} items", cart.map_or(0, |c| c.len())))
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](Session::get).
    pub async fn get_shared<T>(&self, key: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let st = self.loaded().await?;
        let Some(value) = st.data.get(key) else {
            return Ok(None);
        };
        let id = st.base.as_ref().map(|base| &base.id);
        Ok(Some(
            self.inner
                .config
                .shared_values
                .get_or_decode(id, key, value)?,
        ))
    }

    /// Reads `key` as a JSON value.
    ///
    /// # Errors
    ///
    /// A store failure while loading the session, or a stored value that
    /// JSON cannot hold (a map whose keys are not strings).
    pub async fn get_value(&self, key: &str) -> Result<Option<serde_json::Value>> {
        let st = self.loaded().await?;
        Ok(st.data.get(key).map(Value::to_json).transpose()?)
    }

    /// Sets `key` to `value`; saved when the response is produced (or by
    /// [`save`](Session::save)). Setting a key to the value it already has
    /// is not a change.
    ///
    /// # Errors
    ///
    /// `value` cannot be serialized, or the session cannot be loaded.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let value = Value::new(&value)?;
        let mut st = self.loaded().await?;
        if st.data.get(key) == Some(&value) {
            return Ok(());
        }
        let previous = st.data.insert(key.to_owned(), value.clone());
        let previous_change = st.changes.insert(key.to_owned(), Some(value));
        if let Err(e) = self.inner.check_size(&st) {
            restore(&mut st, key, previous, previous_change);
            return Err(e);
        }
        Ok(())
    }

    /// Removes `key`, returning its old value.
    ///
    /// # Errors
    ///
    /// The session cannot be loaded, or the old value does not deserialize
    /// as `T`.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let mut st = self.loaded().await?;
        let Some(old) = st.data.remove(key) else {
            return Ok(None);
        };
        st.changes.insert(key.to_owned(), None);
        Ok(Some(old.get()?))
    }

    /// Atomically replaces the value of `key` with `f(old)` and saves it at
    /// once.
    ///
    /// If another request saved the session in between, the session is
    /// reloaded and `f` runs again on the fresh value (with a short random
    /// back-off), up to the layer's attempt limit
    /// ([`with_max_attempts`](crate::SessionLayer::with_max_attempts)). So
    /// `f` may run more than once and should only compute.
    ///
    /// ```
    /// # async fn handler(session: session_core::Session) -> session_core::Result<()> {
    /// // Add one item to the cart, even while other requests do the same.
    /// let cart: Vec<String> = session
    ///     .update("cart", |cart: Option<Vec<String>>| {
    ///         let mut cart = cart.unwrap_or_default();
    ///         cart.push("sku-1".into());
    ///         cart
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when every attempt lost to a concurrent save; a
    /// store or (de)serialization failure. On error the key keeps the value
    /// it had before the call.
    pub async fn update<T, F>(&self, key: &str, mut f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let inner = &self.inner;
        let mut st = self.loaded().await?;
        let max = inner.config.max_attempts.max(1);
        for attempt in 1..=max {
            let current = st.data.get(key).map(Value::get::<T>).transpose()?;
            let new = f(current);
            let value = Value::new(&new)?;
            let previous = st.data.insert(key.to_owned(), value);
            // `commit` saves `data` as a whole, which settles any pending
            // change of this key; the entry is kept only to be restored.
            let previous_change = st.changes.remove(key);
            let started = std::time::Instant::now();
            match inner.commit(&mut st).await {
                Ok(true) => return Ok(new),
                Ok(false) => {}
                Err(e) => {
                    restore(&mut st, key, previous, previous_change);
                    return Err(e);
                }
            }
            // Lost the race: re-read and let `f` run on the fresh value.
            if attempt < max {
                backoff(attempt, started.elapsed()).await;
            }
            if let Err(e) = inner.rebase(&mut st).await {
                restore(&mut st, key, previous, previous_change);
                return Err(e);
            }
            if attempt < max {
                metrics::update_reapplied();
            }
        }
        metrics::retries_exhausted();
        Err(Error::Conflict { attempts: max })
    }

    /// Saves pending changes now instead of when the response is produced,
    /// so a handler can see a failure before it answers.
    ///
    /// # Errors
    ///
    /// A store failure, or [`Error::Conflict`] if the changes could not be
    /// merged within the attempt limit.
    pub async fn save(&self) -> Result<()> {
        let mut st = self.inner.state.lock().await;
        self.inner.flush(&mut st).await
    }

    /// The ID of the stored session, loading it if needed; `None` for a
    /// session that has not been saved yet.
    ///
    /// # Errors
    ///
    /// A store failure while loading.
    pub async fn id(&self) -> Result<Option<Id>> {
        Ok(self.loaded().await?.base.as_ref().map(|r| r.id.clone()))
    }

    /// Whether the session holds no data.
    ///
    /// # Errors
    ///
    /// A store failure while loading.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.loaded().await?.data.is_empty())
    }

    /// Gives the session a new ID, keeping its data, and deletes the record
    /// under the old ID. Call it when privileges change (log-in) so an ID
    /// planted or seen before cannot be used afterwards.
    ///
    /// # Errors
    ///
    /// A store failure; the old session is then left as it was.
    pub async fn cycle_id(&self) -> Result<()> {
        let inner = &self.inner;
        let mut st = self.loaded().await?;
        let Some(old) = st.base.clone() else {
            // Nothing stored yet: the first save picks a fresh ID anyway.
            return Ok(());
        };
        let now = now();
        let mut record = Record::new(
            Id::random(),
            st.data.clone(),
            old.created_at,
            inner.config.deadline(now, old.created_at),
        );
        record.binding = old.binding.clone();
        let users = inner.persistence.user_sessions(&inner.config);
        let mut origin = st.origin;
        if let Some(binding) = &old.binding {
            // The new ID is findable before it exists.
            users
                .add(&binding.user, users.entry(&record, &binding.handle))
                .await?;
        }
        let replaced = inner
            .persistence
            .replace(&inner.config, &old, &mut record, &mut origin)
            .await;
        if let Some(binding) = &old.binding {
            let gone = match &replaced {
                Ok(Some(_)) => vec![old.id.clone()],
                _ => vec![record.id.clone()],
            };
            users.forget(&binding.user, &gone).await;
        }
        let Some(change) = replaced? else {
            // Revoked meanwhile: the session ended.
            inner.reset(&mut st);
            return Ok(());
        };
        record.data = Data::new();
        st.base = Some(record);
        st.origin = origin;
        st.changes.clear();
        st.apply(change, inner.config.cookie.persistent);
        metrics::cycled();
        Ok(())
    }

    /// Deletes the session from the store and removes the cookie (log-out).
    /// Data set afterwards in the same request starts a new session. A
    /// session bound to a user ([`bind_user`](Session::bind_user)) leaves
    /// the user's listings too; with a store that keeps user indexes, the
    /// session is loaded first if the request has not read it yet.
    ///
    /// # Errors
    ///
    /// A store failure; the session is then left as it was.
    pub async fn destroy(&self) -> Result<()> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        if inner.persistence.user_sessions(&inner.config).supported() {
            // Whether the session is bound to a user, so that its entry
            // leaves the user's index with it.
            inner.ensure_loaded(&mut st).await?;
        }
        let id = st
            .base
            .as_ref()
            .map(|r| &r.id)
            .or_else(|| st.incoming.as_ref().and_then(Incoming::id));
        if let Some(id) = id {
            inner.persistence.delete(&inner.config, id).await?;
            metrics::destroyed();
            if let Some(binding) = st.base.as_ref().and_then(|r| r.binding.as_ref()) {
                let users = inner.persistence.user_sessions(&inner.config);
                users.forget(&binding.user, std::slice::from_ref(id)).await;
            }
        }
        inner.reset(&mut st);
        Ok(())
    }

    /// Ties this session to `user` (a string the app chooses, such as an
    /// account ID) and records `device`, so that it appears in the user's
    /// listings ([`user_sessions`](Session::user_sessions),
    /// [`UserSessions::list`](crate::UserSessions::list)) and can be
    /// revoked from any of the user's sessions. Call it at log-in, right
    /// after [`cycle_id`](Session::cycle_id):
    ///
    /// ```
    /// # async fn log_in(session: session_core::Session) -> session_core::Result<()> {
    /// use session_core::Device;
    ///
    /// session.cycle_id().await?;
    /// session
    ///     .bind_user("account-42", Device::new().with_user_agent("Mozilla/5.0"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The session is saved at once, and is findable in the user's index
    /// before it is: a [`revoke_all_sessions`](Session::revoke_all_sessions)
    /// that starts after this call returns ends it. Binding again to the
    /// same user keeps the session's [`SessionHandle`](crate::SessionHandle)
    /// and records the new device; binding to another user moves it. When
    /// the user now has more live sessions than
    /// [`with_max_sessions_per_user`](crate::SessionLayer::with_max_sessions_per_user)
    /// allows, the oldest others are revoked.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] with a store that cannot list sessions (the
    /// cookie store); a store failure, or [`Error::Conflict`].
    pub async fn bind_user(&self, user: impl Into<String>, device: crate::Device) -> Result<()> {
        let user = user.into();
        let inner = &self.inner;
        let users = inner.persistence.user_sessions(&inner.config);
        if !users.supported() {
            return Err(Error::Unsupported {
                operation: "bind a session to a user",
            });
        }
        let mut st = self.loaded().await?;
        let previous = st.base.as_ref().and_then(|r| r.binding.clone());
        let handle = match &previous {
            Some(b) if b.user == user => b.handle.clone(),
            _ => crate::SessionHandle::random(),
        };
        let max = inner.config.max_attempts.max(1);
        let mut bound = None;
        let mut entries = 0;
        for attempt in 1..=max {
            let started = std::time::Instant::now();
            let mut record = inner.next_record(&st);
            record.binding = Some(crate::store::Binding::new(
                user.clone(),
                handle.clone(),
                device.clone(),
                now(),
            ));
            let expected = st.base.as_ref().map(|b| b.version);
            // Indexed first, so the bound record is findable once written.
            let indexed = record.id.clone();
            entries = users.add(&user, users.entry(&record, &handle)).await?;
            let mut origin = st.origin;
            let written = inner
                .persistence
                .write(&inner.config, &mut record, expected, &mut origin)
                .await;
            st.store_failed |= unavailable(&written);
            match written? {
                Write::Saved(change) => {
                    if record.id != indexed {
                        // A create that found the ID taken picked another
                        // (a 128-bit collision; never seen in practice).
                        entries = users.add(&user, users.entry(&record, &handle)).await?;
                        users.forget(&user, &[indexed]).await;
                    }
                    st.apply(change, inner.config.cookie.persistent);
                    st.remove_cookie = false;
                    record.data = Data::new();
                    st.changes.clear();
                    bound = Some(record.id.clone());
                    st.base = Some(record);
                    st.origin = origin;
                    break;
                }
                Write::Conflict => {
                    metrics::conflict();
                    if expected.is_none() {
                        users.forget(&user, &[indexed]).await;
                    }
                }
            }
            if attempt < max {
                backoff(attempt, started.elapsed()).await;
            }
            inner.rebase(&mut st).await?;
        }
        let Some(id) = bound else {
            metrics::retries_exhausted();
            return Err(Error::Conflict { attempts: max });
        };
        if let Some(old) = previous.filter(|b| b.user != user) {
            users.forget(&old.user, std::slice::from_ref(&id)).await;
        }
        users.enforce_cap(&user, &id, entries).await
    }

    /// The user this session is bound to ([`bind_user`](Session::bind_user)),
    /// if any.
    ///
    /// # Errors
    ///
    /// A store failure while loading.
    pub async fn user(&self) -> Result<Option<String>> {
        let st = self.loaded().await?;
        Ok(st
            .base
            .as_ref()
            .and_then(|r| r.binding.as_ref())
            .map(|b| b.user.clone()))
    }

    /// The live sessions of the user this session is bound to, oldest
    /// first, this one flagged [`current`](crate::SessionInfo::current);
    /// empty when the session is bound to nobody.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] with a store that cannot list sessions (the
    /// cookie store); a store failure.
    pub async fn user_sessions(&self) -> Result<Vec<crate::SessionInfo>> {
        let users = self.users("list user sessions")?;
        let st = self.loaded().await?;
        let Some((user, own)) = bound(&st) else {
            return Ok(Vec::new());
        };
        Ok(users
            .live(&user, "list user sessions")
            .await?
            .iter()
            .map(|live| live.info(&self.inner.config, live.entry.handle == own))
            .collect())
    }

    /// Ends one session of the bound user, named by its handle; its next
    /// request, on any instance, is anonymous. `Ok(false)` if no live
    /// session of this user has that handle (or this session is bound to
    /// nobody). Revoking the current session acts like
    /// [`destroy`](Session::destroy).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] with a store that cannot list sessions (the
    /// cookie store); a store failure.
    pub async fn revoke_session(&self, handle: &crate::SessionHandle) -> Result<bool> {
        let users = self.users("revoke a session")?;
        let (user, own) = {
            let st = self.loaded().await?;
            match bound(&st) {
                Some(b) => b,
                None => return Ok(false),
            }
        };
        if &own == handle {
            self.destroy().await?;
            return Ok(true);
        }
        users.revoke(&user, handle).await
    }

    /// Ends every other session of the bound user (after a password
    /// change, say); returns how many were ended. `0` when this session is
    /// bound to nobody.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] with a store that cannot list sessions (the
    /// cookie store); a store failure.
    pub async fn revoke_other_sessions(&self) -> Result<usize> {
        let users = self.users("revoke other sessions")?;
        let st = self.loaded().await?;
        let Some((user, own)) = bound(&st) else {
            return Ok(0);
        };
        users
            .revoke_where(&user, "revoke other sessions", |b| b.handle != own)
            .await
    }

    /// Ends every session of the bound user, this one included (which
    /// acts like [`destroy`](Session::destroy)); returns how many were
    /// ended. `0` when this session is bound to nobody.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] with a store that cannot list sessions (the
    /// cookie store); a store failure.
    pub async fn revoke_all_sessions(&self) -> Result<usize> {
        let users = self.users("revoke all sessions")?;
        let (user, own) = {
            let st = self.loaded().await?;
            match bound(&st) {
                Some(b) => b,
                None => return Ok(0),
            }
        };
        // Others first: ending this one forgets who the user is.
        let others = users
            .revoke_where(&user, "revoke all sessions", |b| b.handle != own)
            .await?;
        self.destroy().await?;
        Ok(others + 1)
    }

    /// The per-user index, or [`Error::Unsupported`] naming `operation`.
    fn users(&self, operation: &'static str) -> Result<crate::UserSessions> {
        let users = self.inner.persistence.user_sessions(&self.inner.config);
        if users.supported() {
            Ok(users)
        } else {
            Err(Error::Unsupported { operation })
        }
    }

    /// Runs when the response is ready: saves what changed, extends idle
    /// expiry if due, and says what to do with the cookie.
    pub(crate) async fn finish(&self) -> Result<Option<CookieAction>> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        if !st.changes.is_empty() {
            inner.flush(&mut st).await?;
        } else if st.loaded {
            inner.touch_if_due(&mut st).await;
        }
        let Some(record) = &st.base else {
            return Ok(st.remove_cookie.then_some(CookieAction::Remove));
        };
        if !st.send_cookie {
            return Ok(None);
        }
        let value = match &st.cookie_value {
            Some(value) => value.clone(),
            // Nothing is pending here, so `data` is the record's.
            None => inner
                .persistence
                .cookie_value(&inner.config, record, &st.data, st.origin)?,
        };
        Ok(Some(CookieAction::Set {
            value,
            max_age: inner
                .config
                .cookie
                .persistent
                .then(|| inner.config.max_age(record.expires_at, now())),
        }))
    }

    /// Whether a store call failed or timed out in this request.
    #[cfg(feature = "metrics")]
    pub(crate) async fn store_failed(&self) -> bool {
        self.inner.state.lock().await.store_failed
    }

    /// The layer's settings this session follows.
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    async fn loaded(&self) -> Result<MutexGuard<'_, State>> {
        let mut st = self.inner.state.lock().await;
        self.inner.ensure_loaded(&mut st).await?;
        Ok(st)
    }
}

/// The user and handle of the session in `st`, if it is bound.
fn bound(st: &State) -> Option<(String, crate::SessionHandle)> {
    let binding = st.base.as_ref()?.binding.as_ref()?;
    Some((binding.user.clone(), binding.handle.clone()))
}

impl Inner {
    /// Forgets the session in `st`: its cookie goes, and data set
    /// afterwards start a new session.
    fn reset(&self, st: &mut State) {
        let had_cookie = st.incoming.is_some();
        *st = State {
            loaded: true,
            remove_cookie: had_cookie || st.send_cookie,
            ..State::default()
        };
    }

    async fn ensure_loaded(&self, st: &mut State) -> Result<()> {
        if st.loaded {
            return Ok(());
        }
        if st.load_failed {
            return Err(Error::backend(
                "the session store failed earlier in this request",
            ));
        }
        let loaded = match &st.incoming {
            Some(incoming) => match self.persistence.load(&self.config, incoming).await {
                Ok(loaded) => loaded,
                // A stored session that cannot be read is as good as none:
                // the request gets a fresh one (under a new ID, so the bad
                // record stays as it is until it expires). A record in a
                // format of a newer build is not garbage: it stays an error.
                Err(Error::Decode(e)) if !matches!(e, DecodeError::UnknownFormat(_)) => {
                    tracing::warn!(error = %e, "the stored session does not decode; starting a fresh one");
                    metrics::cookie_rejected("undecodable");
                    None
                }
                Err(e) => {
                    st.load_failed = true;
                    st.store_failed |= e.status() == http::StatusCode::SERVICE_UNAVAILABLE;
                    return Err(e);
                }
            },
            None => None,
        };
        let record = loaded.map(|loaded| {
            st.send_cookie |= loaded.resend_cookie;
            st.origin = loaded.origin;
            loaded.record
        });
        let now = now();
        let found = record.is_some();
        st.base = record.filter(|r| self.config.is_live(r, now));
        if found && st.base.is_none() {
            metrics::cookie_rejected("expired");
        }
        if let Some(base) = &mut st.base {
            st.data = std::mem::take(&mut base.data);
        }
        st.loaded = true;
        Ok(())
    }

    /// One save attempt of the current data: `Ok(false)` on a version
    /// conflict.
    async fn commit(&self, st: &mut State) -> Result<bool> {
        let mut record = self.next_record(st);
        let expected_version = st.base.as_ref().map(|base| base.version);
        let mut origin = st.origin;
        let written = self
            .persistence
            .write(&self.config, &mut record, expected_version, &mut origin)
            .await;
        st.store_failed |= unavailable(&written);
        let change = match written? {
            Write::Saved(change) => change,
            Write::Conflict => {
                metrics::conflict();
                return Ok(false);
            }
        };
        st.apply(change, self.config.cookie.persistent);
        st.remove_cookie = false;
        record.data = Data::new();
        st.base = Some(record);
        st.origin = origin;
        st.changes.clear();
        Ok(true)
    }

    /// The record the current data would be saved as.
    fn next_record(&self, st: &State) -> Record {
        let now = now();
        match &st.base {
            None => Record::new(
                Id::random(),
                st.data.clone(),
                now,
                self.config.deadline(now, now),
            ),
            // Field by field: cloning `base` would copy its data only to
            // drop it again.
            Some(base) => Record {
                id: base.id.clone(),
                version: base.version + 1,
                created_at: base.created_at,
                expires_at: self.config.deadline(now, base.created_at),
                data: st.data.clone(),
                binding: base.binding.as_ref().map(|b| {
                    let mut b = b.clone();
                    b.last_seen = now;
                    b
                }),
            },
        }
    }

    /// Fails with [`Error::TooLarge`] if the current data no longer fits
    /// where the session is kept (the cookie, for client-side stores).
    fn check_size(&self, st: &State) -> Result<()> {
        let origin = st.base.as_ref().map(|_| st.origin);
        self.persistence
            .check_fits(&self.config, origin, &|| self.next_record(st))
    }

    /// Reloads the stored record and re-applies pending changes on it. A
    /// record that vanished meanwhile (expired or destroyed) is not revived:
    /// the changes go into a new session with a new ID.
    async fn rebase(&self, st: &mut State) -> Result<()> {
        let fresh = match &st.base {
            Some(base) => {
                let reloaded = self
                    .persistence
                    .reload(&self.config, &base.id, &mut st.origin)
                    .await;
                st.store_failed |= unavailable(&reloaded);
                reloaded?
            }
            None => None,
        };
        let now = now();
        st.base = fresh.filter(|r| self.config.is_live(r, now));
        st.data = st
            .base
            .as_mut()
            .map(|r| std::mem::take(&mut r.data))
            .unwrap_or_default();
        for (key, change) in &st.changes {
            match change {
                Some(v) => st.data.insert(key.clone(), v.clone()),
                None => st.data.remove(key),
            };
        }
        Ok(())
    }

    /// Saves pending changes, merging with concurrent saves.
    async fn flush(&self, st: &mut State) -> Result<()> {
        if st.changes.is_empty() {
            return Ok(());
        }
        self.ensure_loaded(st).await?;
        let max = self.config.max_attempts.max(1);
        for attempt in 1..=max {
            let started = std::time::Instant::now();
            if self.commit(st).await? {
                return Ok(());
            }
            if attempt < max {
                backoff(attempt, started.elapsed()).await;
                self.rebase(st).await?;
            }
        }
        metrics::retries_exhausted();
        Err(Error::Conflict { attempts: max })
    }

    /// Extends the idle deadline of an unchanged session, at most once per
    /// `touch_after`. Failure is logged, not fatal: the request itself
    /// succeeded and the data is intact.
    async fn touch_if_due(&self, st: &mut State) {
        let (Some(idle), Some(every)) = (self.config.idle_timeout, self.config.touch_after())
        else {
            return;
        };
        let Some(base) = &st.base else { return };
        let Some(expires_at) = base.expires_at else {
            return;
        };
        let now = now();
        let last_extended = expires_at - idle;
        if now - last_extended < every {
            return;
        }
        let new_expiry = self.config.deadline(now, base.created_at);
        if new_expiry.is_none_or(|at| at <= expires_at) {
            return;
        }
        let id = base.id.clone();
        match self
            .persistence
            .extend(&self.config, &id, new_expiry, st.origin)
            .await
        {
            Ok(Some(change)) => {
                if let Some(base) = &mut st.base {
                    base.expires_at = new_expiry;
                }
                st.apply(change, self.config.cookie.persistent);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not extend session expiry"),
        }
    }
}

/// Whether `result` failed because the store is down or slow.
fn unavailable<T>(result: &Result<T>) -> bool {
    result
        .as_ref()
        .is_err_and(|e| e.status() == http::StatusCode::SERVICE_UNAVAILABLE)
}

fn restore(st: &mut State, key: &str, previous: Option<Value>, change: Option<Option<Value>>) {
    match previous {
        Some(v) => st.data.insert(key.to_owned(), v),
        None => st.data.remove(key),
    };
    match change {
        Some(c) => st.changes.insert(key.to_owned(), c),
        None => st.changes.remove(key),
    };
}

/// Full-jitter exponential back-off in units of the store's own latency:
/// after the k-th lost race, a random pause of up to 2^k times the time the
/// failed save took (at least 1 ms), capped at 2 s. Writers that collided
/// spread out in proportion to how slow the store is, so a slow backend
/// does not suffer a herd of retries.
pub(crate) async fn backoff(attempt: u32, latency: Duration) {
    let unit = latency.max(Duration::from_millis(1));
    let cap = unit
        .saturating_mul(1 << attempt.min(12))
        .min(Duration::from_secs(2));
    let micros = rand::rng().random_range(0..=cap.as_micros() as u64);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.inner.persistence)
            .finish_non_exhaustive()
    }
}
