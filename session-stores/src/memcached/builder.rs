//! [`MemcachedStoreBuilder`]: settings, the node list, connecting.

use std::time::Duration;

use session_core::{Error, Result};

use super::client::{self, Status};
use super::error::MemcachedStoreError;
use super::pool::{CallError, Limits, Node};
use super::ring::Ring;
use super::store::{MemcachedStore, NOTE_SUFFIX};

const DEFAULT_PREFIX: &str = "session:";
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MAX_CONNECTIONS: usize = 32;
/// The longest key Memcached accepts.
const MAX_KEY: usize = 250;

/// Memcached's default limit on the size of one item (`-I`): 1 MiB.
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

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
    pub(super) fn new() -> Self {
        MemcachedStoreBuilder {
            prefix: DEFAULT_PREFIX.into(),
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

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
    #[tracing::instrument(name = "memcached_connect", level = "debug", skip_all, fields(db.system = "memcached", db.operation = "mn", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
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
        // One server: the span names it; several: none of them.
        if let [node] = &nodes[..] {
            node.record_server();
        }
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
        Ok(MemcachedStore::from_parts(
            nodes,
            Ring::new(addrs.iter().map(String::as_str)),
            self.prefix,
            self.max_item_size,
        ))
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

// Defined here, beside the builder they use, so that the store's module
// never imports the builder.
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
        MemcachedStoreBuilder::new()
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
