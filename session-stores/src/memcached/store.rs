//! [`MemcachedStore`], its builder, and the session operations.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use session_core::store::{Record, now, unix_millis};
use session_core::{Error, Id, Result, SessionStore};
use time::OffsetDateTime;

use super::client::{self, Reply, SetMode, Status};
use super::codec;
use super::error::MemcachedStoreError;
use super::pool::{CallError, Limits, Node};
use super::ring::Ring;
use crate::stored;

const DEFAULT_PREFIX: &str = "session:";
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MAX_CONNECTIONS: usize = 32;

/// Memcached's default limit on the size of one item (`-I`): 1 MiB.
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

/// What an item costs beyond its key and value, rounded up: Memcached's
/// item header with its CAS value and the value's CRLF (59 bytes measured
/// on 1.6).
const ITEM_OVERHEAD: usize = 96;
/// The longest key Memcached accepts.
const MAX_KEY: usize = 250;
/// The suffix of a session's touch note key.
const NOTE_SUFFIX: &str = "~t";
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
    /// Connects to the Memcached nodes in `urls`, `host:port[,host:port…]`
    /// (the port defaults to 11211), with the default settings (see
    /// [`MemcachedStoreBuilder`]).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the list is empty or malformed, or no node
    /// answers. A node that is down while others answer is only logged: its
    /// sessions fail until it is back.
    pub async fn connect(urls: &str) -> Result<Self> {
        Self::builder().connect(urls).await
    }

    /// Settings for a new store.
    pub fn builder() -> MemcachedStoreBuilder {
        MemcachedStoreBuilder {
            prefix: DEFAULT_PREFIX.into(),
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
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
        let i = self
            .inner
            .ring
            .node_for(id.as_str().as_bytes())
            .unwrap_or(0);
        &self.inner.nodes[i]
    }

    async fn call(&self, id: &Id, op: &'static str, request: &[u8]) -> Result<Reply> {
        self.node(id)
            .call(op, request)
            .await
            .map_err(|e| self.error(op, e))
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
        let items = self
            .node(id)
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

/// Builds a [`MemcachedStore`]: key prefix, timeouts, item size limit and
/// pool size, then [`connect`](Self::connect).
#[derive(Clone, Debug)]
pub struct MemcachedStoreBuilder {
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    max_item_size: usize,
    max_connections: usize,
}

impl MemcachedStoreBuilder {
    /// The prefix of every key (default `session:`), so sessions can share
    /// the servers with other data. No spaces or control characters.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long opening one connection may take (default 1 s).
    pub fn with_connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long one command may take, waiting for a free connection
    /// included (default 1 s); a command that takes longer fails with
    /// [`Error::Timeout`].
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The servers' item size limit, their `-I` setting (default 1 MiB, as
    /// Memcached's). A session whose item would exceed it fails with
    /// [`Error::TooLarge`] before anything is sent.
    ///
    /// Set it to the servers' value, never above it: Memcached answers a
    /// write above its limit by dropping the item it had, so the store
    /// checks first.
    pub fn with_max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes;
        self
    }

    /// The most connections open to one node at a time (default 32); more
    /// concurrent calls wait for one, within the response timeout.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Connects to the nodes in `urls`; see [`MemcachedStore::connect`].
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the list or the key prefix is invalid, or no
    /// node answers.
    #[tracing::instrument(name = "memcached_connect", level = "debug", skip_all)]
    pub async fn connect(self, urls: &str) -> Result<MemcachedStore> {
        let addrs = parse_nodes(urls).map_err(Error::backend)?;
        if self.prefix.len() + 22 + NOTE_SUFFIX.len() > MAX_KEY
            || self.prefix.bytes().any(|b| b <= b' ' || b == 0x7f)
        {
            return Err(Error::backend(MemcachedStoreError::InvalidPrefix(
                self.prefix,
            )));
        }
        let limits = Limits {
            connection_timeout: self.connection_timeout,
            response_timeout: self.response_timeout,
            max_connections: self.max_connections,
            max_value: self.max_item_size.max(DEFAULT_MAX_ITEM_SIZE),
        };
        let nodes: Vec<Node> = addrs.iter().map(|a| Node::new(a, limits)).collect();
        let mut failures = Vec::new();
        for node in &nodes {
            match node.call("no-op", &client::no_op()).await {
                Ok(reply) if reply.status == Status::NoOp => {}
                Ok(reply) => failures.push(format!("{}: replied {:?}", node.addr(), reply.status)),
                Err(CallError::Timeout(t)) => {
                    failures.push(format!("{}: no reply within {t:?}", node.addr()));
                }
                Err(CallError::Failed(e)) => failures.push(e.to_string()),
            }
        }
        if failures.len() == nodes.len() {
            return Err(Error::backend(MemcachedStoreError::NoNodeAnswers(
                failures.join("; "),
            )));
        }
        for failure in &failures {
            tracing::warn!(%failure, "Memcached node down at start; its sessions fail until it is back");
        }
        Ok(MemcachedStore {
            inner: Arc::new(Inner {
                ring: Ring::new(addrs.iter().map(String::as_str)),
                nodes,
                prefix: self.prefix.into_boxed_str(),
                max_item_size: self.max_item_size,
                seen: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// `host:port[,host:port…]`, spaces allowed around commas, port 11211 if
/// absent, a `memcached://` scheme accepted.
fn parse_nodes(urls: &str) -> std::result::Result<Vec<String>, MemcachedStoreError> {
    let mut nodes = Vec::new();
    for raw in urls.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let node = raw.strip_prefix("memcached://").unwrap_or(raw);
        let node = node.strip_suffix('/').unwrap_or(node);
        let invalid = || MemcachedStoreError::InvalidNode(raw.to_owned());
        let (host, port) = match node.rsplit_once(':') {
            // An IPv6 address without a port, `[::1]`.
            Some((_, port)) if port.ends_with(']') => (node, "11211"),
            Some((host, port)) => (host, port),
            None => (node, "11211"),
        };
        let port: u16 = port.parse().map_err(|_| invalid())?;
        if host.is_empty() || host.contains(['/', '@', ' ']) || port == 0 {
            return Err(invalid());
        }
        let node = format!("{host}:{port}");
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    if nodes.is_empty() {
        return Err(MemcachedStoreError::NoNodes);
    }
    Ok(nodes)
}

#[async_trait]
impl SessionStore for MemcachedStore {
    #[tracing::instrument(name = "memcached_create", level = "debug", skip_all, fields(id = ?record.id))]
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

    #[tracing::instrument(name = "memcached_load", level = "debug", skip_all, fields(id = ?id))]
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

    #[tracing::instrument(name = "memcached_save", level = "debug", skip_all, fields(id = ?record.id, expected_version))]
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

    #[tracing::instrument(name = "memcached_delete", level = "debug", skip_all, fields(id = ?id))]
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

    #[tracing::instrument(name = "memcached_touch", level = "debug", skip_all, fields(id = ?id))]
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_parse() {
        assert_eq!(
            parse_nodes("127.0.0.1:11211, 127.0.0.1:11212,").unwrap(),
            ["127.0.0.1:11211", "127.0.0.1:11212"]
        );
        assert_eq!(
            parse_nodes("memcached://cache.internal,cache2:11300").unwrap(),
            ["cache.internal:11211", "cache2:11300"]
        );
        assert_eq!(parse_nodes("[::1]:11211").unwrap(), ["[::1]:11211"]);
        assert_eq!(parse_nodes("a:1,a:1").unwrap(), ["a:1"]);
        for bad in [
            "",
            " , ",
            "host:port",
            "host:0",
            ":11211",
            "redis://x:1",
            "a:99999",
        ] {
            assert!(parse_nodes(bad).is_err(), "{bad:?}");
        }
    }
}
