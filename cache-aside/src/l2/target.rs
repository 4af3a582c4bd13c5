//! Where L2's commands go: one Redis server, or the master that Redis
//! Sentinel names, found again after a failover.
//!
//! Through Sentinel no command is retried: L2 fails open (or closed, as
//! configured) like after any Redis failure, and the next command after a
//! failure asks the Sentinels for the master again and connects there. A
//! failover costs the commands in flight when the master died or was
//! demoted, and the reads that skip L2 for the retry pause.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::SentinelClient;
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

/// L2's server.
#[expect(
    clippy::large_enum_variant,
    reason = "one per cache, built once: its size does not matter"
)]
pub(crate) enum Target {
    /// One server, always the same.
    Server {
        client: redis::Client,
        conn: ConnectionManager,
        server: Arc<Server>,
    },
    /// The master of a name, as the Sentinels know it.
    Sentinel(Followed),
}

/// The master Sentinel named last, and how to ask again.
pub(crate) struct Followed {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: RwLock<Master>,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
}

/// The master in use: `None` until asked, and again after a failure.
/// `generation` counts how often it was forgotten, so that the failures of
/// commands sent to one master forget it once.
#[derive(Default)]
struct Master {
    generation: u64,
    node: Option<Node>,
}

/// A master Sentinel named: its client, connection and address.
#[derive(Clone)]
struct Node {
    client: redis::Client,
    conn: ConnectionManager,
    server: Arc<Server>,
}

/// Where a connection goes, as the spans' `server.address` and
/// `server.port` name it.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) address: String,
    pub(crate) port: Option<u16>,
}

impl Server {
    fn of(client: &redis::Client) -> Arc<Server> {
        let (address, port) = match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port)),
            other => (other.to_string(), None),
        };
        Arc::new(Server { address, port })
    }
}

/// A connection to L2's server, and which master it reached.
pub(crate) struct Connection {
    pub(crate) conn: ConnectionManager,
    pub(crate) generation: u64,
    pub(crate) server: Arc<Server>,
}

impl Target {
    /// L2 on `client`'s server; the connection opens lazily.
    pub(crate) fn server(client: redis::Client, config: ConnectionManagerConfig) -> Self {
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .expect("a connection manager without push sender is always valid");
        let server = Server::of(&client);
        Target::Server {
            client,
            conn,
            server,
        }
    }

    /// L2 on the master `sentinel` names; asked on the first command.
    pub(crate) fn sentinel(
        sentinel: SentinelClient,
        config: ConnectionManagerConfig,
        connect_timeout: Duration,
    ) -> Self {
        Target::Sentinel(Followed {
            sentinel: tokio::sync::Mutex::new(sentinel),
            current: RwLock::new(Master::default()),
            config,
            connect_timeout,
        })
    }

    /// A connection to the server (through Sentinel, the current master's).
    pub(crate) async fn connection(&self) -> RedisResult<Connection> {
        match self {
            Target::Server { conn, server, .. } => Ok(Connection {
                conn: conn.clone(),
                generation: 0,
                server: server.clone(),
            }),
            Target::Sentinel(followed) => {
                followed
                    .master()
                    .await
                    .map(|(generation, node)| Connection {
                        conn: node.conn,
                        generation,
                        server: node.server,
                    })
            }
        }
    }

    /// A client for the server, for the invalidation subscription.
    pub(crate) async fn client(&self) -> RedisResult<redis::Client> {
        match self {
            Target::Server { client, .. } => Ok(client.clone()),
            Target::Sentinel(followed) => followed.master().await.map(|(_, node)| node.client),
        }
    }

    /// A command on the connection of `generation` failed with `error`
    /// (`None`: it timed out). Through Sentinel, an error that a dead or demoted master gives
    /// makes the next command ask the Sentinels again.
    pub(crate) fn failed(&self, generation: u64, error: Option<&RedisError>) {
        let Target::Sentinel(followed) = self else {
            return;
        };
        if error.is_some_and(|e| !may_have_moved(e)) {
            return;
        }
        let mut current = followed
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.generation == generation && current.node.is_some() {
            current.generation += 1;
            current.node = None;
            tracing::debug!("redis master failed: asking Sentinel again on the next command");
        }
    }

    /// The server's address as configured (through Sentinel, the master's
    /// when known), for `Debug`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Server { client, .. } => client.get_connection_info().addr().to_string(),
            Target::Sentinel(followed) => {
                let current = followed
                    .current
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match &current.node {
                    Some(node) => {
                        format!(
                            "sentinel master {}",
                            node.client.get_connection_info().addr()
                        )
                    }
                    None => "sentinel master (not asked yet)".to_owned(),
                }
            }
        }
    }
}

impl Followed {
    fn known(&self) -> Option<(u64, Node)> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let node = current.node.as_ref()?;
        Some((current.generation, node.clone()))
    }

    /// The master in use, asking the Sentinels (within the connect
    /// timeout) when there is none.
    async fn master(&self) -> RedisResult<(u64, Node)> {
        if let Some(known) = self.known() {
            return Ok(known);
        }
        let mut sentinel = self.sentinel.lock().await;
        // Another call may have asked while this one waited for the lock.
        if let Some(known) = self.known() {
            return Ok(known);
        }
        let client =
            match tokio::time::timeout(self.connect_timeout, sentinel.async_get_client()).await {
                Ok(client) => client?,
                Err(_) => {
                    return Err(RedisError::from((
                        ErrorKind::Io,
                        "no Sentinel named the master in time",
                    )));
                }
            };
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone())?;
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tracing::debug!(master = %client.get_connection_info().addr(), "Sentinel named the redis master");
        let node = Node {
            server: Server::of(&client),
            client,
            conn,
        };
        current.node = Some(node.clone());
        Ok((current.generation, node))
    }
}

/// What a dead master (no connection, no answer) or a demoted one
/// (`READONLY`) answers.
fn may_have_moved(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
}
