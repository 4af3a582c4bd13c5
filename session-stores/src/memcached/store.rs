//! [`MemcachedStore`], its builder, and the session operations.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use session_core::store::{Record, UserIndex, now, unix_millis};
use session_core::{Error, Id, Result, SessionStore};
use time::OffsetDateTime;

use super::client::{self, Reply, SetMode, Status};
use super::codec;
use super::error::MemcachedStoreError;
use super::pool::{CallError, Node};
use super::ring::Ring;
use crate::stored;

/// What an item costs beyond its key and value, rounded up: Memcached's
/// item header with its CAS value and the value's CRLF (59 bytes measured
/// on 1.6).
const ITEM_OVERHEAD: usize = 96;
/// The suffix of a session's touch note key.
pub(super) const NOTE_SUFFIX: &str = "~t";
/// CAS values remembered from recent reads and writes, so that a save
/// needs no read of its own; cleared when full.
const MAX_REMEMBERED: usize = 100_000;
/// Creates retry with a fresh ID this often before giving up.
const MAX_CREATE_ATTEMPTS: u32 = 8;

/// Sessions in Memcached: one server or several, each session on one of
/// them by rendezvous hashing.
///
/// Saves are compare-and-set on Memcached's CAS values, creates are
/// insert-only (`ms` in add mode), and touches change the item's lifetime
/// without rewriting it. See the [module documentation](super) for an
/// example, the layout, command counts, failure behaviour and the
/// trade-off against Redis.
///
/// Clones share the connection pools.
#[derive(Clone)]
pub struct MemcachedStore {
    inner: Arc<Inner>,
}

struct Inner {
    nodes: Vec<Node>,
    ring: Ring,
    prefix: Box<str>,
    max_item_size: usize,
    /// Session ID → (version, CAS value) last seen by this instance.
    seen: Mutex<HashMap<Box<str>, (u64, u64)>>,
}

impl fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedStore")
            .field(
                "nodes",
                &self.inner.nodes.iter().map(Node::addr).collect::<Vec<_>>(),
            )
            .field("prefix", &self.inner.prefix)
            .field("max_item_size", &self.inner.max_item_size)
            .finish_non_exhaustive()
    }
}

impl MemcachedStore {
    /// A store over `nodes`, placed by `ring`.
    pub(super) fn from_parts(
        nodes: Vec<Node>,
        ring: Ring,
        prefix: String,
        max_item_size: usize,
    ) -> Self {
        MemcachedStore {
            inner: Arc::new(Inner {
                nodes,
                ring,
                prefix: prefix.into_boxed_str(),
                max_item_size,
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Memcached key of the session `id`: `<prefix><id>`.
    pub fn key(&self, id: &Id) -> String {
        format!("{}{}", self.inner.prefix, id.as_str())
    }

    /// The node (`host:port`, as configured) that holds the session `id`.
    pub fn node_for(&self, id: &Id) -> &str {
        self.node(id).addr()
    }

    fn node(&self, id: &Id) -> &Node {
        self.node_by(id.as_str().as_bytes())
    }

    /// The node rendezvous hashing picks for `name`.
    fn node_by(&self, name: &[u8]) -> &Node {
        let i = self.inner.ring.node_for(name).unwrap_or(0);
        &self.inner.nodes[i]
    }

    async fn call(&self, id: &Id, op: &'static str, request: &[u8]) -> Result<Reply> {
        let node = self.node(id);
        node.record_server();
        node.call(op, request).await.map_err(|e| self.error(op, e))
    }

    /// A command on the item `key` that names no session (placed by the
    /// whole key).
    pub(super) async fn call_key(
        &self,
        key: &str,
        op: &'static str,
        request: &[u8],
    ) -> Result<Reply> {
        let node = self.node_by(key.as_bytes());
        node.record_server();
        node.call(op, request).await.map_err(|e| self.error(op, e))
    }

    pub(super) fn unexpected_key(&self, key: &str, op: &'static str, reply: &Reply) -> Error {
        Error::backend(MemcachedStoreError::Protocol {
            node: self.node_by(key.as_bytes()).addr().to_owned(),
            message: format!("{op} got the unexpected reply {:?}", reply.status),
        })
    }

    fn error(&self, _op: &'static str, err: CallError) -> Error {
        match err {
            CallError::Timeout(after) => Error::Timeout(after),
            CallError::Failed(MemcachedStoreError::Call { source, .. })
                if source.is_too_large() =>
            {
                // Only when the servers' limit is below the configured one.
                Error::TooLarge {
                    size: self.inner.max_item_size,
                    limit: self.inner.max_item_size,
                }
            }
            CallError::Failed(e) => Error::backend(e),
        }
    }

    fn unexpected(&self, id: &Id, op: &'static str, reply: &Reply) -> Error {
        Error::backend(MemcachedStoreError::Protocol {
            node: self.node_for(id).to_owned(),
            message: format!("{op} got the unexpected reply {:?}", reply.status),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, (u64, u64)>> {
        self.inner.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, id: &Id, version: u64, cas: Option<u64>) {
        let Some(cas) = cas else { return };
        let mut seen = self.seen();
        if seen.len() >= MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(id.as_str().into(), (version, cas));
    }

    fn forget(&self, id: &Id) {
        self.seen().remove(id.as_str());
    }

    fn remembered_cas(&self, id: &Id, version: u64) -> Option<u64> {
        self.seen()
            .get(id.as_str())
            .filter(|(v, _)| *v == version)
            .map(|(_, cas)| *cas)
    }

    /// The item value for `record`, or `TooLarge` before anything is sent.
    fn value(&self, key: &str, record: &Record, token: &str) -> Result<Vec<u8>> {
        let value = codec::encode(record, &record.encode()?, token);
        let size = key.len() + NOTE_SUFFIX.len() + value.len() + ITEM_OVERHEAD;
        if size > self.inner.max_item_size {
            return Err(Error::TooLarge {
                size,
                limit: self.inner.max_item_size,
            });
        }
        Ok(value)
    }

    /// Reads the item of `id`: its value and CAS value, or `None`.
    async fn get(&self, id: &Id, key: &str, op: &'static str) -> Result<Option<(Vec<u8>, Reply)>> {
        let mut reply = self.call(id, op, &client::get(key)).await?;
        match (reply.status, reply.value.take()) {
            (Status::Miss, _) => Ok(None),
            (Status::Value, Some(value)) if reply.meta.cas.is_some() => Ok(Some((value, reply))),
            _ => Err(self.unexpected(id, op, &reply)),
        }
    }

    /// Whether the item of `id` holds the write `token` at `version`: a
    /// write that was sent again after its reply was lost, and had landed.
    async fn holds_write(&self, id: &Id, key: &str, version: u64, token: &str) -> Result<bool> {
        let Some((value, reply)) = self.get(id, key, "write check").await? else {
            return Ok(false);
        };
        let (header, _) = codec::split(&value)?;
        let ours = header.version == version && header.token == token.as_bytes();
        if ours {
            self.remember(id, version, reply.meta.cas);
        }
        Ok(ours)
    }

    /// Reads the item of `id` and its touch note in one `gets`: the
    /// item's value and CAS value, and the expiry of the note if it is
    /// about this very item.
    async fn get_with_note(
        &self,
        id: &Id,
        key: &str,
    ) -> Result<Option<(Vec<u8>, u64, Option<Option<i64>>)>> {
        let note_key = format!("{key}{NOTE_SUFFIX}");
        let node = self.node(id);
        node.record_server();
        let items = node
            .call_gets("load", &client::gets(&[key, &note_key]))
            .await
            .map_err(|e| self.error("load", e))?;
        let mut item = None;
        let mut note = None;
        for found in items {
            if found.key == key {
                item = Some((found.value, found.cas));
            } else if found.key == note_key {
                note = Some(found.value);
            }
        }
        Ok(item.map(|(value, cas)| {
            let expiry = note.and_then(|n| codec::note_expiry(&n, cas));
            (value, cas, expiry)
        }))
    }
}

#[async_trait]
impl SessionStore for MemcachedStore {
    #[tracing::instrument(name = "memcached_create", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "ms", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn create(&self, record: &mut Record) -> Result<()> {
        let token = Id::random();
        let token = token.as_str();
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let key = self.key(&record.id);
            let value = self.value(&key, record, token)?;
            let exptime = codec::exptime(record.expires_at, now());
            let request = client::set(&key, &value, exptime, SetMode::Add);
            let reply = self.call(&record.id, "create", &request).await?;
            match reply.status {
                Status::Done => {
                    self.remember(&record.id, record.version, reply.meta.cas);
                    return Ok(());
                }
                Status::NotStored => {
                    if self
                        .holds_write(&record.id, &key, record.version, token)
                        .await?
                    {
                        return Ok(());
                    }
                    tracing::debug!("session ID taken, retrying with a fresh one");
                    record.id = Id::random();
                }
                _ => return Err(self.unexpected(&record.id, "create", &reply)),
            }
        }
        Err(Error::backend(MemcachedStoreError::Protocol {
            node: self.node_for(&record.id).to_owned(),
            message: format!("create found {MAX_CREATE_ATTEMPTS} random session IDs taken"),
        }))
    }

    #[tracing::instrument(name = "memcached_load", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "gets", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = self.key(id);
        let Some((value, cas, touched)) = self.get_with_note(id, &key).await? else {
            return Ok(None);
        };
        let (header, data) = codec::split(&value)?;
        let expires_ms = touched.unwrap_or(header.expires_ms);
        let record = stored::decode_unexpired(
            id,
            expires_ms,
            now(),
            || {
                i64::try_from(header.version)
                    .map_err(|_| stored::malformed("session version out of range"))
            },
            || Ok(data),
        )?;
        if let Some(record) = &record {
            self.remember(id, record.version, Some(cas));
        }
        Ok(record)
    }

    #[tracing::instrument(name = "memcached_save", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "ms", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty, expected_version))]
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        let id = &record.id;
        let key = self.key(id);
        let token = Id::random();
        let token = token.as_str();
        let value = self.value(&key, record, token)?;
        let mut cas = match self.remembered_cas(id, expected_version) {
            Some(cas) => cas,
            None => {
                let Some((stored, reply)) = self.get(id, &key, "save").await? else {
                    return Ok(false);
                };
                let (header, _) = codec::split(&stored)?;
                if header.version != expected_version
                    || header.expires_ms.is_some_and(|at| at <= unix_millis(now()))
                {
                    return Ok(false);
                }
                reply.meta.cas.unwrap_or_default()
            }
        };
        // A second round only when the remembered CAS value was stale but
        // the version still the expected one (say, after a restart).
        for _ in 0..2 {
            let exptime = codec::exptime(record.expires_at, now());
            let request = client::set(&key, &value, exptime, SetMode::Cas(cas));
            let reply = self.call(id, "save", &request).await?;
            match reply.status {
                Status::Done => {
                    self.remember(id, record.version, reply.meta.cas);
                    return Ok(true);
                }
                Status::NotFound | Status::NotStored => {
                    self.forget(id);
                    return Ok(false);
                }
                Status::Exists => {
                    let Some((stored, now_reply)) = self.get(id, &key, "save check").await? else {
                        self.forget(id);
                        return Ok(false);
                    };
                    let (header, _) = codec::split(&stored)?;
                    if header.version == record.version && header.token == token.as_bytes() {
                        self.remember(id, record.version, now_reply.meta.cas);
                        return Ok(true);
                    }
                    if header.version != expected_version {
                        self.remember(id, header.version, now_reply.meta.cas);
                        return Ok(false);
                    }
                    cas = now_reply.meta.cas.unwrap_or_default();
                }
                _ => return Err(self.unexpected(id, "save", &reply)),
            }
        }
        Ok(false)
    }

    #[tracing::instrument(name = "memcached_delete", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "md", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn delete(&self, id: &Id) -> Result<()> {
        self.forget(id);
        let reply = self
            .call(id, "delete", &client::delete(&self.key(id)))
            .await?;
        match reply.status {
            Status::Done | Status::NotFound => Ok(()),
            _ => Err(self.unexpected(id, "delete", &reply)),
        }
    }

    #[tracing::instrument(name = "memcached_touch", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "mg", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        let key = self.key(id);
        let exptime = codec::exptime(expires_at, now());
        let reply = self
            .call(id, "touch", &client::touch(&key, exptime))
            .await?;
        let cas = match (reply.status, reply.meta.cas) {
            (Status::Miss, _) => return Ok(false),
            (Status::Done, Some(cas)) => cas,
            _ => return Err(self.unexpected(id, "touch", &reply)),
        };
        let note_key = format!("{key}{NOTE_SUFFIX}");
        let note = codec::encode_note(cas, expires_at);
        let reply = self
            .call(
                id,
                "touch note",
                &client::set(&note_key, &note, exptime, SetMode::Set),
            )
            .await?;
        match reply.status {
            Status::Done => Ok(true),
            _ => Err(self.unexpected(id, "touch note", &reply)),
        }
    }

    fn supports_user_index(&self) -> bool {
        true
    }

    #[tracing::instrument(name = "memcached_load_user_index", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "mg", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        self.load_index(user).await
    }

    #[tracing::instrument(name = "memcached_save_user_index", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "ms", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        self.save_index(user, index, expected_version).await
    }

    #[tracing::instrument(name = "memcached_delete_user_index", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "md", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        self.delete_index(user, expected_version).await
    }
}
