//! Building a [`RedisStore`]: its settings, and the ways to connect it,
//! from URLs or from a client or connection the application already has.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::caching::CacheConfig;
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    ConnectionAddr, IntoConnectionInfo, ProtocolVersion, RedisError, TlsCertificates, TlsMode,
};
use session_core::{Error, Result};

use super::connection::Conn;
use super::durable::WaitReplicas;
use super::error::RedisStoreError;
use super::failover::{Following, Source};
use super::near_cache::{NearCache, cache_config};
use super::store::RedisStore;
use super::tls::{is_tls_client, is_tls_url, require_crypto_provider};

const DEFAULT_PREFIX: &str = "sess:";
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_NEAR_CACHE_TTL: Duration = Duration::from_secs(2);

impl RedisStore {
    /// Connects to a single Redis node with the default settings (see
    /// [`RedisStoreBuilder`]).
    ///
    /// `url` is `redis://[user:password@]host[:port][/db]`, or `rediss://…`
    /// for TLS (verified against the system's root certificates; see
    /// [`RedisStoreBuilder::with_tls_root_cert_pem`] for a private CA).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid, the server cannot be
    /// reached or refuses the credentials, or the URL asks for TLS and the
    /// process has no rustls crypto provider installed (see the
    /// [module documentation](super#tls)).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().connect(url).await
    }

    /// Connects to a Redis Cluster with the default settings, given one or
    /// more of its nodes (the others are discovered). All URLs must use the
    /// same scheme and credentials.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid, no node can be reached, or
    /// the URLs ask for TLS and the process has no rustls crypto provider
    /// installed.
    pub async fn connect_cluster<I>(urls: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Self::builder().connect_cluster(urls).await
    }

    /// Settings for a new store.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            prefix: DEFAULT_PREFIX.into(),
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            root_cert: None,
            near_cache: None,
            near_cache_ttl: DEFAULT_NEAR_CACHE_TTL,
            wait: None,
        }
    }
}

/// Builds a [`RedisStore`]: key prefix, timeouts, TLS roots and near
/// cache, then one of
///
/// | method | connects to | from |
/// |--------|-------------|------|
/// | [`connect`](Self::connect) | a single node | a URL |
/// | [`connect_cluster`](Self::connect_cluster) | a Redis Cluster | URLs of some of its nodes |
/// | [`connect_sentinel`](Self::connect_sentinel) | the master of a name, through Redis Sentinel | URLs of the Sentinels |
/// | [`connect_with_client`](Self::connect_with_client) | a single node | your [`redis::Client`] |
/// | [`connect_with_sentinel_client`](Self::connect_with_sentinel_client) | the master of a name, through Redis Sentinel | your [`SentinelClient`] |
/// | [`connect_with_cluster_client`](Self::connect_with_cluster_client) | a Redis Cluster | your [`ClusterClient`] |
/// | [`build_with_connection`](Self::build_with_connection) | a single node | your open [`ConnectionManager`], used as it is |
/// | [`build_with_cluster_connection`](Self::build_with_cluster_connection) | a Redis Cluster | your open [`ClusterConnection`], used as it is |
///
/// The `connect*` methods open the store's own connection and apply every
/// setting, except that a client of yours keeps its own TLS settings. The
/// `build_with_*` methods use your connection with the settings you gave
/// it; of the store's settings only the key prefix applies (and the
/// response timeout, as the figure reported by
/// [`Error::Timeout`]), and the near cache is not available.
#[derive(Clone)]
pub struct RedisStoreBuilder {
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    root_cert: Option<Vec<u8>>,
    near_cache: Option<NonZeroUsize>,
    near_cache_ttl: Duration,
    wait: Option<WaitReplicas>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("root_cert", &self.root_cert.as_ref().map(|_| "set"))
            .field("near_cache", &self.near_cache)
            .field("near_cache_ttl", &self.near_cache_ttl)
            .field("wait_replicas", &self.wait)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `sess:`), so sessions can share
    /// a database with other data. Every byte of it is stored once per
    /// session: the default is short enough that a session's key takes
    /// Redis' smallest allocation for it.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one attempt to open a connection may take (default 1 s).
    pub fn with_connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long to wait for the reply to one command (default 1 s); a
    /// command that takes longer fails with [`Error::Timeout`]. On a
    /// cluster this also bounds the command's redirections and retries.
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Trust the CA certificate(s) in `pem` for `rediss://` connections
    /// instead of the system's root certificates, e.g. a private CA that
    /// signed the server's certificate. The server name in the URL is still
    /// checked against the certificate.
    ///
    /// Applies to [`connect`](Self::connect) and
    /// [`connect_cluster`](Self::connect_cluster); a client of your own
    /// keeps its own TLS settings. TLS is rustls, with the crypto provider
    /// the application installs (see the [module documentation](super#tls)).
    pub fn with_tls_root_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_cert = Some(pem.into());
        self
    }

    /// Keep up to `sessions` recently read sessions in this process (a
    /// near cache), so that a read of one of them makes no round trip.
    /// Off by default; `0` turns it off.
    ///
    /// This is Redis's server-assisted client-side caching: the connection
    /// speaks RESP3 and turns on `CLIENT TRACKING`, and Redis tells it when
    /// any client changes or deletes a key it has cached, which drops the
    /// entry. It needs Redis 6 or later (7 or later for a Cluster whose
    /// slots move), and a connection the store opens itself: with
    /// [`connect_with_cluster_client`](Self::connect_with_cluster_client)
    /// or the `build_with_*` methods it is an error. What it changes:
    ///
    /// - Writes are unaffected: every save is still a compare-and-set in
    ///   Redis, and a save computed from a cached record that another
    ///   instance has since changed loses it and is re-applied, so no
    ///   update is lost.
    /// - This instance reads its own writes: after it writes a session,
    ///   its reads of that session go to Redis for one near-cache TTL.
    /// - A read on one instance normally sees another instance's write as
    ///   soon as Redis's invalidation arrives (one network hop). It can miss
    ///   it for up to the near-cache TTL ([`with_near_cache_ttl`], default
    ///   2 s): when the invalidation overtakes the reply of the read that
    ///   fills the entry, or when the connection dies without closing. The
    ///   TTL is the bound on staleness; raise it only where reads of a
    ///   session that lag other instances' writes by that much are fine.
    /// - Sessions bound to a user
    ///   ([`Session::bind_user`](session_core::Session::bind_user)) are
    ///   always read from Redis, so revoking one (or deleting it) takes
    ///   effect on every instance at once, whatever happened to the
    ///   invalidation; a read of a bound session costs what it costs
    ///   without a near cache.
    /// - A Redis user restricted by ACL needs `HELLO`, `CLIENT TRACKING`,
    ///   `CLIENT CACHING` and `PTTL` as well (see the project's
    ///   `SECURITY.md`).
    ///
    /// [`with_near_cache_ttl`]: Self::with_near_cache_ttl
    pub fn with_near_cache(mut self, sessions: usize) -> Self {
        self.near_cache = NonZeroUsize::new(sessions);
        self
    }

    /// The longest an entry stays in the near cache (default 2 s): the
    /// bound on how stale a near-cache read can be, and how long this
    /// instance's reads of a session go to Redis after it wrote it.
    pub fn with_near_cache_ttl(mut self, ttl: Duration) -> Self {
        self.near_cache_ttl = ttl;
        self
    }

    /// Count a write as done only once `replicas` replicas have it: every
    /// `create`, `save`, `touch` and `delete` is followed by
    /// `WAIT replicas timeout` in the same round trip (one pipeline), and
    /// if fewer replicas confirm it within `timeout` the call fails with
    /// [`Error::Backend`] ("not known to be durable"), which the
    /// [`SessionLayer`](session_core::SessionLayer) answers with `503`.
    /// `0` (the default) turns it off.
    ///
    /// Redis replicates asynchronously, so without this a write the
    /// primary acknowledged in the moment before it died can be missing on
    /// the replica promoted in its place: the user was told "saved", and
    /// the session is read as it was before. With it, a write is reported
    /// done only when a failover (to one of the replicas that confirmed
    /// it) keeps it. A write that fails this way may still have been
    /// applied; the client sees a `503`, never a success that can be
    /// undone.
    ///
    /// What it costs:
    ///
    /// - **Latency:** every write waits for the slowest of the `replicas`
    ///   fastest replicas to acknowledge it: about one network round trip
    ///   from the primary to a replica (well under a millisecond in one
    ///   zone, one or two across zones), on top of the write itself. Reads
    ///   are not affected, except as below.
    /// - **Head-of-line waiting:** Redis holds the connection that sent a
    ///   `WAIT` until it returns, and the store multiplexes all its calls
    ///   over one connection, so calls issued meanwhile queue behind it.
    ///   While replicas are healthy this is the round trip above; when they
    ///   fall behind or are gone, every call of this store can take up to
    ///   `timeout` longer.
    /// - **Availability:** while fewer than `replicas` replicas are
    ///   connected (one died, a failover just promoted the only one),
    ///   every write fails after `timeout` with a `503`, until a replica is
    ///   back. Choose `replicas` below the number of replicas you run if
    ///   writes must survive one replica's loss.
    /// - **Timeouts:** the connections the store opens allow `timeout` on
    ///   top of [`with_response_timeout`](Self::with_response_timeout) for
    ///   a reply; with a connection of your own
    ///   ([`build_with_connection`](Self::build_with_connection)) make its
    ///   response timeout longer than `timeout`, or a slow `WAIT` is
    ///   reported as [`Error::Timeout`] (a `503` as well).
    ///
    /// A Redis user restricted by ACL needs `WAIT`. On a Redis Cluster the
    /// `WAIT` goes to the master that took the write.
    pub fn with_wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some(WaitReplicas { replicas, timeout });
        self
    }

    /// Connects to a single Redis node; see [`RedisStore::connect`].
    ///
    /// The connection is multiplexed (one connection serves all concurrent
    /// calls) and reconnects in the background after a failure. It follows
    /// an endpoint that fails over, such as ElastiCache's primary endpoint:
    /// when the node it is connected to answers `READONLY` (it was demoted
    /// to a replica), the store opens a new connection to the URL, checks
    /// with `ROLE` that it reached a primary, and sends the command again
    /// (every command of the store is safe to repeat). Until the endpoint
    /// names the promoted node, writes fail with `503`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the URL is invalid, the server cannot be
    /// reached or refuses the credentials, or the URL asks for TLS and the
    /// process has no rustls crypto provider installed.
    pub async fn connect(self, url: &str) -> Result<RedisStore> {
        if is_tls_url(url) {
            require_crypto_provider()?;
        }
        let info = url.into_connection_info().map_err(connect_error)?;
        let client = match self.tls_certs() {
            Some(certs) => redis::Client::build_with_tls(info, certs),
            None => redis::Client::open(info),
        }
        .map_err(connect_error)?;
        self.connect_with_client(client).await
    }

    /// Connects to a single Redis node through `client`, a client the
    /// application already has (e.g. one it also uses for other data).
    ///
    /// The store opens its own multiplexed, auto-reconnecting connection
    /// (a [`ConnectionManager`]) from the client, with this builder's
    /// timeouts and near cache; the client's address, credentials,
    /// database and TLS settings are used as they are (for the near cache
    /// the store's connection speaks RESP3 whatever the client's protocol).
    /// It follows a failover of the client's address as
    /// [`connect`](Self::connect) describes.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the server cannot be reached or refuses the
    /// credentials, or the client uses TLS and the process has no rustls
    /// crypto provider installed.
    #[tracing::instrument(name = "redis_connect", level = "debug", skip_all)]
    pub async fn connect_with_client(self, client: redis::Client) -> Result<RedisStore> {
        if is_tls_client(&client) {
            require_crypto_provider()?;
        }
        let client = if self.near_cache.is_some() {
            let info = client.get_connection_info().clone();
            let settings = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            redis::Client::open(info.set_redis_settings(settings)).map_err(connect_error)?
        } else {
            client
        };
        // Boxed, as below: it keeps the futures of applications that
        // build the store inside deeply nested ones within the compiler's
        // layout depth.
        let conn = Box::pin(Following::connect(
            Source::Endpoint(client),
            self.manager_config(),
            self.connection_timeout,
        ))
        .await
        .map_err(connect_error)?;
        Ok(self.finish(Conn::Following(conn)))
    }

    /// Connects to the master that the Redis Sentinels at `sentinel_urls`
    /// know as `master_name`, and follows it: when the master stops
    /// answering or answers `READONLY` (it was demoted), the store asks the
    /// Sentinels again and moves to the promoted replica, without a
    /// restart. Calls fail with `503` from the master's failure until
    /// Sentinel has promoted a replica (its `down-after-milliseconds` plus
    /// the election, typically a few seconds), then work again.
    ///
    /// The master and its replicas are reached with the username,
    /// password and database of the first Sentinel URL, over TLS if it is
    /// `rediss://` (verified against the system's roots); for other
    /// settings build a [`SentinelClient`] and use
    /// [`connect_with_sentinel_client`](Self::connect_with_sentinel_client).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid, no Sentinel answers, none
    /// knows `master_name`, or its master cannot be reached.
    #[tracing::instrument(name = "redis_connect_sentinel", level = "debug", skip_all)]
    pub async fn connect_sentinel<I>(
        self,
        sentinel_urls: I,
        master_name: &str,
    ) -> Result<RedisStore>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut infos = Vec::new();
        for url in sentinel_urls {
            infos.push(url.as_ref().into_connection_info().map_err(connect_error)?);
        }
        let Some(first) = infos.first() else {
            return Err(Error::backend(RedisStoreError::NoSentinel));
        };
        let mut settings = first.redis_settings().clone();
        if self.near_cache.is_some() {
            settings = settings.set_protocol(ProtocolVersion::RESP3);
        }
        let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
        if let ConnectionAddr::TcpTls { .. } = first.addr() {
            require_crypto_provider()?;
            node = node.set_tls_mode(TlsMode::Secure);
        }
        let client =
            SentinelClient::build(infos, master_name, Some(node), SentinelServerType::Master)
                .map_err(connect_error)?;
        self.connect_following(Source::Sentinel(client)).await
    }

    /// Connects to the master that `client` (a Sentinel client of the
    /// application's, for [`SentinelServerType::Master`]) names, and
    /// follows it as [`connect_sentinel`](Self::connect_sentinel) does;
    /// the client's settings for the Sentinels and the nodes are used as
    /// they are. If they use TLS, install a rustls crypto provider first.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if no Sentinel answers or the master cannot be
    /// reached.
    #[tracing::instrument(name = "redis_connect_sentinel", level = "debug", skip_all)]
    pub async fn connect_with_sentinel_client(self, client: SentinelClient) -> Result<RedisStore> {
        self.connect_following(Source::Sentinel(client)).await
    }

    async fn connect_following(self, source: Source) -> Result<RedisStore> {
        let conn = Box::pin(Following::connect(
            source,
            self.manager_config(),
            self.connection_timeout * 2,
        ))
        .await
        .map_err(connect_error)?;
        Ok(self.finish(Conn::Following(conn)))
    }

    /// The settings of the single-node connections the store opens.
    fn manager_config(&self) -> ConnectionManagerConfig {
        let mut config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.reply_timeout()))
            .set_number_of_retries(2);
        if let Some(cache) = self.cache_config() {
            config = config.set_cache_config(cache);
        }
        config
    }

    /// How long the store's own connections wait for a reply: the
    /// response timeout, plus the `WAIT` timeout when writes wait for
    /// replicas.
    fn reply_timeout(&self) -> Duration {
        self.response_timeout + self.wait.map_or(Duration::ZERO, |w| w.timeout)
    }

    /// Connects to a Redis Cluster; see [`RedisStore::connect_cluster`].
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is invalid, no node can be reached, or
    /// the URLs ask for TLS and the process has no rustls crypto provider
    /// installed.
    #[tracing::instrument(name = "redis_connect_cluster", level = "debug", skip_all)]
    pub async fn connect_cluster<I>(self, urls: I) -> Result<RedisStore>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        if urls.iter().any(|u| is_tls_url(u)) {
            require_crypto_provider()?;
        }
        let mut builder = ClusterClient::builder(urls)
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.reply_timeout());
        if let Some(certs) = self.tls_certs() {
            builder = builder.certs(certs);
        }
        if let Some(cache) = self.cache_config() {
            builder = builder
                .use_protocol(ProtocolVersion::RESP3)
                .cache_config(cache);
        }
        let client = builder.build().map_err(connect_error)?;
        let conn = client.get_async_connection().await.map_err(connect_error)?;
        Ok(self.finish(Conn::Cluster(conn)))
    }

    /// Connects to a Redis Cluster through `client`, a cluster client the
    /// application already has.
    ///
    /// The store opens its own cluster connection from the client with
    /// this builder's timeouts; everything else (nodes, credentials, TLS,
    /// protocol, retries) is the client's. If the client uses TLS, install
    /// a rustls crypto provider before calling this: the store cannot see
    /// the client's nodes to check.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if no node can be reached, or if a near cache was
    /// asked for (it needs settings of the client itself; use
    /// [`connect_cluster`](Self::connect_cluster)).
    #[tracing::instrument(name = "redis_connect_cluster", level = "debug", skip_all)]
    pub async fn connect_with_cluster_client(self, client: ClusterClient) -> Result<RedisStore> {
        self.no_near_cache("connect_with_cluster_client")?;
        let config = ClusterConfig::new()
            .set_connection_timeout(self.connection_timeout)
            .set_response_timeout(self.reply_timeout());
        let conn = client
            .get_async_connection_with_config(config)
            .await
            .map_err(connect_error)?;
        Ok(self.finish(Conn::Cluster(conn)))
    }

    /// A store on `conn`, a connection to a single node that the
    /// application has opened itself, used as it is: its timeouts, retries
    /// and protocol stay as the application set them, and the store shares
    /// it with the application's other commands.
    ///
    /// Set [`with_response_timeout`](Self::with_response_timeout) to the
    /// connection's response timeout, so that [`Error::Timeout`] reports it.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a near cache was asked for (it needs a
    /// connection the store opens itself; use
    /// [`connect_with_client`](Self::connect_with_client)).
    pub fn build_with_connection(self, conn: ConnectionManager) -> Result<RedisStore> {
        self.no_near_cache("build_with_connection")?;
        Ok(self.finish(Conn::Single(conn)))
    }

    /// A store on `conn`, a Redis Cluster connection that the application
    /// has opened itself, used as it is; see
    /// [`build_with_connection`](Self::build_with_connection).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a near cache was asked for (use
    /// [`connect_cluster`](Self::connect_cluster)).
    pub fn build_with_cluster_connection(self, conn: ClusterConnection) -> Result<RedisStore> {
        self.no_near_cache("build_with_cluster_connection")?;
        Ok(self.finish(Conn::Cluster(conn)))
    }

    fn no_near_cache(&self, method: &'static str) -> Result<()> {
        match self.near_cache {
            Some(_) => Err(Error::backend(
                RedisStoreError::NearCacheNeedsOwnConnection(method),
            )),
            None => Ok(()),
        }
    }

    fn cache_config(&self) -> Option<CacheConfig> {
        self.near_cache
            .map(|size| cache_config(size, self.near_cache_ttl))
    }

    fn tls_certs(&self) -> Option<TlsCertificates> {
        self.root_cert.as_ref().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    fn finish(self, conn: Conn) -> RedisStore {
        let near = self.near_cache.map(|_| NearCache::new(self.near_cache_ttl));
        let timeout = self.reply_timeout();
        RedisStore::from_parts(conn, self.prefix, timeout, near, self.wait)
    }
}

fn connect_error(err: RedisError) -> Error {
    Error::backend(RedisStoreError::Connect(err))
}
