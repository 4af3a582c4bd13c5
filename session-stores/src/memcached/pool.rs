//! One Memcached server and its pooled connections: every call bounded in
//! time, broken connections dropped and replaced by themselves.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::client::{Answer, ClientError, Connection, Item, Reply, Request};
use super::error::MemcachedStoreError;

/// Timeouts and sizes shared by every node of a store.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) connection_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) max_connections: usize,
    /// The longest value a reply may carry.
    pub(super) max_value: usize,
}

/// Why a call to a node failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// No reply within the response timeout.
    Timeout(Duration),
    /// Anything else.
    Failed(MemcachedStoreError),
}

/// A server, `host:port`, with its idle connections.
#[derive(Debug)]
pub(super) struct Node {
    addr: Box<str>,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection in use or idle.
    permits: Semaphore,
    limits: Limits,
}

impl Node {
    pub(super) fn new(addr: &str, limits: Limits) -> Self {
        Node {
            addr: addr.into(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(limits.max_connections.max(1)),
            limits,
        }
    }

    /// The server's address, as configured.
    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// Records this server as `server.address` and `server.port` on the
    /// current span, when that span is recorded at all.
    pub(super) fn record_server(&self) {
        let span = tracing::Span::current();
        if span.is_disabled() {
            return;
        }
        // Always `host:port`, an IPv6 host in brackets: the builder
        // normalises the configured nodes.
        match self
            .addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        {
            Some((host, port)) => {
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                span.record("server.address", host);
                span.record("server.port", port);
            }
            None => {
                span.record("server.address", &*self.addr);
            }
        }
    }

    /// Sends one request and returns its reply, on an idle connection or a
    /// new one.
    ///
    /// Waiting for a free connection and the reply together take at most
    /// the response timeout, opening a connection at most the connection
    /// timeout. A request that failed on an idle connection (which the
    /// server may have closed meanwhile) is sent once more on a new one;
    /// every request of the store is safe to repeat (see the store's write
    /// tokens).
    pub(super) async fn call(&self, op: &'static str, request: &[u8]) -> Result<Reply, CallError> {
        match self.exchange(op, Request::Meta(request)).await? {
            Answer::Reply(reply) => Ok(reply),
            Answer::Items(_) => {
                Err(self.failed(op, ClientError::Protocol("items for a meta command".into())))
            }
        }
    }

    /// As [`call`](Self::call), for a `gets` request.
    pub(super) async fn call_gets(
        &self,
        op: &'static str,
        request: &[u8],
    ) -> Result<Vec<Item>, CallError> {
        match self.exchange(op, Request::Gets(request)).await? {
            Answer::Items(items) => Ok(items),
            Answer::Reply(_) => {
                Err(self.failed(op, ClientError::Protocol("a reply line for gets".into())))
            }
        }
    }

    async fn exchange(&self, op: &'static str, request: Request<'_>) -> Result<Answer, CallError> {
        let response_timeout = self.limits.response_timeout;
        match tokio::time::timeout(response_timeout, self.exchange_unbounded(op, request)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(response_timeout)),
        }
    }

    async fn exchange_unbounded(
        &self,
        op: &'static str,
        request: Request<'_>,
    ) -> Result<Answer, CallError> {
        // The semaphore is never closed.
        let _permit = self.permits.acquire().await.map_err(|_| {
            CallError::Failed(MemcachedStoreError::Protocol {
                node: self.addr.to_string(),
                message: "connection pool closed".into(),
            })
        })?;
        let pooled = self.lock_idle().pop();
        if let Some(mut conn) = pooled {
            match conn.send(request, self.limits.max_value).await {
                Ok(reply) => {
                    self.put_back(conn);
                    return Ok(reply);
                }
                Err(ClientError::Io(e)) => {
                    tracing::debug!(node = %self.addr, error = %e, "idle connection failed, reconnecting");
                }
                Err(e) => return Err(self.failed(op, e)),
            }
        }
        let mut conn = self.open().await?;
        let reply = conn
            .send(request, self.limits.max_value)
            .await
            .map_err(|e| self.failed(op, e))?;
        self.put_back(conn);
        Ok(reply)
    }

    async fn open(&self) -> Result<Connection, CallError> {
        let timeout = self.limits.connection_timeout;
        match tokio::time::timeout(timeout, Connection::open(&self.addr)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(CallError::Failed(MemcachedStoreError::Connect {
                node: self.addr.to_string(),
                source,
            })),
            Err(_) => Err(CallError::Failed(MemcachedStoreError::ConnectTimeout {
                node: self.addr.to_string(),
                after: timeout,
            })),
        }
    }

    fn failed(&self, op: &'static str, source: ClientError) -> CallError {
        CallError::Failed(MemcachedStoreError::Call {
            node: self.addr.to_string(),
            op,
            source,
        })
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put_back(&self, conn: Connection) {
        // At most `max_connections` exist, as the semaphore allows.
        self.lock_idle().push(conn);
    }
}
