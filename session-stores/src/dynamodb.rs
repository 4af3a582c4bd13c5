//! The DynamoDB store.
//!
//! [`DynamoDbStore`] keeps each session as one item of a DynamoDB table,
//! reads it with strongly consistent reads and writes it with conditional
//! writes, so saves are compare-and-set on the record's version across any
//! number of app instances.
//!
//! ```no_run
//! use session_core::SessionLayer;
//! use session_stores::DynamoDbStore;
//!
//! # async fn run() -> session_core::Result<()> {
//! // Region and credentials from the environment (aws-config's default
//! // chain); table `sessions`, key attribute `id`, TTL attribute `expires_at`.
//! let store = DynamoDbStore::from_env().await;
//! let layer = SessionLayer::new(store);
//!
//! // A client of your own (e.g. with other retry settings), and other names.
//! let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
//!     .http_client(session_stores::dynamodb::https_client())
//!     .load()
//!     .await;
//! let client = aws_sdk_dynamodb::Client::new(&config);
//! let store = DynamoDbStore::new(client)
//!     .with_table_name("shop-sessions")
//!     .with_key_attribute("pk")
//!     .with_expiry_attribute("ttl");
//! // During development: create the table (and enable TTL) if needed.
//! store.create_table_if_missing().await?;
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! # Table and items
//!
//! The table has a string partition key (default attribute `id`) and no
//! sort key; [`DynamoDbStore::create_table_if_missing`] creates one with
//! on-demand capacity. Each item holds:
//!
//! | attribute | type | content |
//! |-----------|------|---------|
//! | `id` (see [`with_key_attribute`](DynamoDbStore::with_key_attribute)) | S | the session ID |
//! | `v`  | N | the record's version |
//! | `d`  | B | the record as written by [`Record::encode`] |
//! | `w`  | S | a random token naming the write, so that a write the SDK retried after a lost reply is recognised as already done |
//! | `expires_at` (see [`with_expiry_attribute`](DynamoDbStore::with_expiry_attribute)) | N | expiry in whole seconds since the Unix epoch, rounded up: the table's TTL attribute |
//! | `expires_at_ms` (the expiry attribute's name + `_ms`) | N | the exact expiry in milliseconds |
//!
//! A session without expiry has neither expiry attribute. DynamoDB's TTL
//! deletes expired items only eventually (often within days), so every read
//! and conditional write also compares the millisecond expiry with the
//! current time: an expired item is never returned, and a new session may
//! take its ID.
//!
//! # Cost
//!
//! | operation | request |
//! |-----------|---------|
//! | `load`    | 1 `GetItem`, strongly consistent |
//! | `create`  | 1 `PutItem` with `attribute_not_exists` |
//! | `save`    | 1 `PutItem` with a condition on the version |
//! | `touch`   | 1 `UpdateItem` of the two expiry attributes only, with `attribute_exists` |
//! | `delete`  | 1 `DeleteItem` |
//! | user index: load, save, delete | 1 `GetItem` (strongly consistent), 1 conditional `PutItem`, 1 conditional `DeleteItem` |
//!
//! # Users' session indexes
//!
//! The store keeps the per-user session index (listing and revoking a
//! user's sessions, [`Session::bind_user`](session_core::Session::bind_user))
//! in the same table: one item per user, key `user#<user key>`
//! ([`user_key`](session_core::store::user_key)), with the attributes of a
//! session item, updated only by conditional writes on its version and
//! read strongly consistently. It is an item rather than a global
//! secondary index because a GSI is only eventually consistent: a
//! revoke-all reading it could miss a log-in acknowledged just before,
//! whose session would then survive.
//!
//! # Retries and throttling
//!
//! Throttling (`ProvisionedThroughputExceededException`,
//! `ThrottlingException`, `RequestLimitExceeded`) and transient errors are
//! retried by the SDK with exponential back-off, per the client's retry
//! configuration (standard mode, 3 attempts by default). To change it,
//! build the client from a config of your own:
//!
//! ```no_run
//! # async fn run() {
//! use std::time::Duration;
//! use aws_sdk_dynamodb::config::retry::RetryConfig;
//!
//! let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
//!     .http_client(session_stores::dynamodb::https_client())
//!     .load()
//!     .await;
//! let config = aws_sdk_dynamodb::config::Builder::from(&shared)
//!     .retry_config(
//!         RetryConfig::standard()
//!             .with_max_attempts(5)
//!             .with_initial_backoff(Duration::from_millis(20)),
//!     )
//!     .build();
//! let store = session_stores::DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(config));
//! # let _ = store;
//! # }
//! ```
//!
//! Keep the layer's store timeout
//! ([`with_store_timeout`](session_core::SessionLayer::with_store_timeout),
//! 3 s by default) above the time the retries may take.
//!
//! # Failures
//!
//! | situation | result |
//! |-----------|--------|
//! | DynamoDB unreachable, throttled beyond the retries, access denied, table missing | [`Error::Backend`] with the SDK's message; the layer answers `503` with `Retry-After: 1` |
//! | a call slower than the layer's store timeout | [`Error::Timeout`] from the layer; `503` |
//! | an item above DynamoDB's 400 KB limit | [`Error::TooLarge`], checked before sending (and DynamoDB's own `ValidationException` for the item size maps to it too); nothing is written and the previous record is intact; the layer answers `413` |
//! | an item this store did not write, or a damaged record | [`Error::Decode`], never a panic; the layer starts a fresh session under a new ID and leaves the item as it is |
//! | a record in a format of a newer build | [`Error::Decode`]; `503` with `Retry-After: 1` (during a rolling upgrade, an instance of the newer build can read it) |
//!
//! [`Error::Backend`]: session_core::Error::Backend
//! [`Error::Timeout`]: session_core::Error::Timeout
//! [`Error::TooLarge`]: session_core::Error::TooLarge
//! [`Error::Decode`]: session_core::Error::Decode

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use session_core::store::{Record, UserIndex, now, unix_millis};
use session_core::{Error, Id, Result, SessionStore};
use time::OffsetDateTime;

use crate::stored::{decode_unexpired, malformed};

mod user_index;

/// DynamoDB's limit on the size of one item: 400 KB.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

const VERSION: &str = "v";
const DATA: &str = "d";
const WRITE: &str = "w";
/// Upper bound on the stored size of a number attribute.
const NUMBER_SIZE: usize = 21;
/// Creates retry with a fresh ID this often before giving up; with 128-bit
/// random IDs a single collision already means something is wrong.
const MAX_CREATE_ATTEMPTS: u32 = 8;

/// Sessions in an Amazon DynamoDB table.
///
/// Reads are strongly consistent; `create`, `save` and `touch` are
/// conditional writes, so saves are compare-and-set on the version across
/// all app instances and creates never overwrite. See the
/// [module documentation](self) for an example, the item layout, costs,
/// retries and failure behaviour.
///
/// Clones share the client.
#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    names: Arc<Names>,
    max_item_size: usize,
    /// The configured endpoint, for traces; `None` when unknown (a client
    /// passed in, or AWS's endpoint for the region).
    server: Option<Arc<Server>>,
}

/// `server.address` and `server.port` of the spans.
#[derive(Debug, PartialEq, Eq)]
struct Server {
    address: Box<str>,
    port: Option<u16>,
}

impl Server {
    /// The host and port of an endpoint URL, `scheme://host[:port][/…]`;
    /// the port from the scheme if absent (80, 443).
    fn from_url(url: &str) -> Option<Server> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.ends_with(']') => (host, Some(port.parse().ok()?)),
            _ => (authority, None),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return None;
        }
        let port = port.or(match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        Some(Server {
            address: host.into(),
            port,
        })
    }
}

#[derive(Clone, Debug)]
struct Names {
    table: String,
    key: String,
    expiry: String,
    expiry_ms: String,
}

impl fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbStore")
            .field("table", &self.names.table)
            .field("key_attribute", &self.names.key)
            .field("expiry_attribute", &self.names.expiry)
            .finish_non_exhaustive()
    }
}

/// The HTTPS client [`DynamoDbStore::from_env`] uses: hyper with rustls on
/// the ring crypto provider, trusting the system's root certificates. Also
/// speaks plain HTTP, for local emulators.
///
/// Give it to a config builder of your own with `.http_client(…)` when your
/// `aws-config`/`aws-sdk-dynamodb` are built without a default HTTPS client.
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl DynamoDbStore {
    /// A store on `client` with the default names: table `sessions`, key
    /// attribute `id`, expiry (TTL) attribute `expires_at`.
    pub fn new(client: Client) -> Self {
        DynamoDbStore {
            client,
            names: Arc::new(Names {
                table: "sessions".into(),
                key: "id".into(),
                expiry: "expires_at".into(),
                expiry_ms: "expires_at_ms".into(),
            }),
            max_item_size: MAX_ITEM_SIZE,
            server: None,
        }
    }

    /// A store with the default names on a client built from `config`
    /// (`Client::new(config)`). Unlike [`new`](Self::new), the store knows
    /// the endpoint URL the client uses when one is configured (the
    /// `endpoint_url` of the config, `AWS_ENDPOINT_URL_DYNAMODB`,
    /// `AWS_ENDPOINT_URL` or a profile's setting, as the SDK picks it) and
    /// names it in its spans (`server.address`, `server.port`).
    pub fn from_sdk_config(config: &aws_types::SdkConfig) -> Self {
        let endpoint = if config.get_origin("endpoint_url").is_client_config() {
            config.endpoint_url().map(str::to_owned)
        } else {
            // As the SDK's own `Config::from(&SdkConfig)` does.
            let key = aws_types::service_config::ServiceConfigKey::builder()
                .service_id("DynamoDB")
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .ok();
            config
                .service_config()
                .zip(key)
                .and_then(|(service, key)| service.load_config(key))
                .or_else(|| config.endpoint_url().map(str::to_owned))
        };
        DynamoDbStore {
            server: endpoint.as_deref().and_then(Server::from_url).map(Arc::new),
            ..Self::new(Client::new(config))
        }
    }

    /// A store with the default names on a client configured from the
    /// environment by `aws-config` (region, credentials, endpoint, retry
    /// settings from the usual variables, profile files, or the instance
    /// metadata service), using [`https_client`].
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(https_client())
            .load()
            .await;
        Self::from_sdk_config(&config)
    }

    /// The table's name (default `sessions`).
    pub fn with_table_name(mut self, table: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.names).table = table.into();
        self
    }

    /// The name of the table's partition key attribute, a string (default
    /// `id`).
    pub fn with_key_attribute(mut self, name: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.names).key = name.into();
        self
    }

    /// The name of the TTL attribute, in whole seconds since the Unix epoch
    /// as DynamoDB's TTL requires (default `expires_at`). The exact expiry
    /// in milliseconds is kept beside it, in the attribute of the same name
    /// with `_ms` appended.
    pub fn with_expiry_attribute(mut self, name: impl Into<String>) -> Self {
        let names = Arc::make_mut(&mut self.names);
        names.expiry = name.into();
        names.expiry_ms = format!("{}_ms", names.expiry);
        self
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.names.table
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Records the configured endpoint (`server.address`, `server.port`)
    /// on the current span, when it is recorded at all and the endpoint is
    /// known.
    fn record_server(&self) {
        let Some(server) = &self.server else {
            return;
        };
        let span = tracing::Span::current();
        if span.is_disabled() {
            return;
        }
        span.record("server.address", &*server.address);
        if let Some(port) = server.port {
            span.record("server.port", port);
        }
    }

    /// Creates the table if it does not exist (on-demand capacity, string
    /// partition key), waits until it is active, and enables TTL on the
    /// expiry attribute. Meant for development and tests; manage production
    /// tables with your infrastructure tooling.
    ///
    /// An endpoint that does not support TTL (such as some emulators) is
    /// logged and otherwise ignored: reads filter expired sessions anyway.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if DynamoDB cannot be reached, refuses, or the
    /// table does not become active within 60 s.
    #[tracing::instrument(level = "debug", skip_all, fields(table = %self.names.table))]
    pub async fn create_table_if_missing(&self) -> Result<()> {
        let names = &self.names;
        let exists = match self
            .client
            .describe_table()
            .table_name(&names.table)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("ResourceNotFoundException") => false,
            Err(e) => return Err(request_error("DescribeTable", e)),
        };
        if !exists {
            let created = self
                .client
                .create_table()
                .table_name(&names.table)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(&names.key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(Error::backend)?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(&names.key)
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(Error::backend)?,
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await;
            match created {
                Ok(_) => tracing::info!(table = %names.table, "created session table"),
                // Created concurrently by someone else.
                Err(e) if e.code() == Some("ResourceInUseException") => {}
                Err(e) => return Err(request_error("CreateTable", e)),
            }
        }
        self.wait_until_active(Duration::from_secs(60)).await?;
        let ttl = self
            .client
            .update_time_to_live()
            .table_name(&names.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(&names.expiry)
                    .build()
                    .map_err(Error::backend)?,
            )
            .send()
            .await;
        match ttl {
            Ok(_) => {}
            Err(e) if e.code() == Some("UnknownOperationException") => tracing::info!(
                table = %names.table,
                "the endpoint does not support UpdateTimeToLive; expired sessions are \
                 filtered on read but not deleted"
            ),
            Err(e)
                if e.code() == Some("ValidationException")
                    && e.message().is_some_and(|m| m.contains("already enabled")) => {}
            Err(e) => return Err(request_error("UpdateTimeToLive", e)),
        }
        Ok(())
    }

    async fn wait_until_active(&self, limit: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.names.table)
                .send()
                .await
                .map_err(|e| request_error("DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(Error::backend(DynamoDbStoreError::TableNotActive {
                    table: self.names.table.clone(),
                    waited: limit,
                }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The item of `record`, with `token` naming this write.
    fn item(
        &self,
        record: &Record,
        data: Vec<u8>,
        token: &str,
    ) -> Result<HashMap<String, AttributeValue>> {
        let names = &self.names;
        let size = self.item_size(record, data.len(), token);
        if size > self.max_item_size {
            return Err(Error::TooLarge {
                size,
                limit: self.max_item_size,
            });
        }
        let mut item = HashMap::with_capacity(6);
        item.insert(
            names.key.clone(),
            AttributeValue::S(record.id.as_str().to_owned()),
        );
        item.insert(
            VERSION.into(),
            AttributeValue::N(record.version.to_string()),
        );
        item.insert(DATA.into(), AttributeValue::B(Blob::new(data)));
        item.insert(WRITE.into(), AttributeValue::S(token.to_owned()));
        if let Some(at) = record.expires_at {
            item.insert(
                names.expiry.clone(),
                AttributeValue::N(ttl_seconds(at).to_string()),
            );
            item.insert(
                names.expiry_ms.clone(),
                AttributeValue::N(unix_millis(at).to_string()),
            );
        }
        Ok(item)
    }

    /// An upper bound on the size DynamoDB counts for the item: attribute
    /// names plus values, numbers at their largest.
    fn item_size(&self, record: &Record, data_len: usize, token: &str) -> usize {
        let names = &self.names;
        let mut size = names.key.len()
            + record.id.as_str().len()
            + VERSION.len()
            + NUMBER_SIZE
            + DATA.len()
            + data_len
            + WRITE.len()
            + token.len();
        if record.expires_at.is_some() {
            size += names.expiry.len() + NUMBER_SIZE + names.expiry_ms.len() + NUMBER_SIZE;
        }
        size
    }

    /// Reads the item `key` strongly consistently (a read that follows a
    /// write anywhere in the fleet sees it).
    async fn get_consistent(
        &self,
        (k, v): (String, AttributeValue),
    ) -> Result<aws_sdk_dynamodb::operation::get_item::GetItemOutput> {
        self.client
            .get_item()
            .table_name(&self.names.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| request_error("GetItem", e))
    }

    fn key(&self, id: &Id) -> (String, AttributeValue) {
        (
            self.names.key.clone(),
            AttributeValue::S(id.as_str().to_owned()),
        )
    }

    /// Maps a failed write: item too large, or a backend error.
    fn write_error<E>(&self, op: &'static str, size: usize, err: SdkError<E>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if err.code() == Some("ValidationException")
            && err
                .message()
                .is_some_and(|m| m.to_ascii_lowercase().contains("item size"))
        {
            return Error::TooLarge {
                size: size.max(MAX_ITEM_SIZE + 1),
                limit: MAX_ITEM_SIZE,
            };
        }
        request_error(op, err)
    }
}

/// The whole seconds DynamoDB's TTL compares with, rounded up so that TTL
/// never deletes an item before its exact expiry.
fn ttl_seconds(at: OffsetDateTime) -> i64 {
    unix_millis(at).div_euclid(1000) + i64::from(unix_millis(at).rem_euclid(1000) != 0)
}

/// The outcome of a conditional write: `Ok(false)` when its condition
/// failed.
fn conditional<T, E>(op: &'static str, result: Result<T, SdkError<E>>) -> Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(request_error(op, e)),
    }
}

fn request_error<E>(op: &'static str, err: SdkError<E>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    Error::backend(DynamoDbStoreError::Request {
        op,
        message: DisplayErrorContext(&err).to_string(),
        source: Box::new(err),
    })
}

/// The store's own errors, carried inside
/// [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum DynamoDbStoreError {
    #[error("DynamoDB {op} failed: {message}")]
    Request {
        op: &'static str,
        message: String,
        #[source]
        source: session_core::BoxError,
    },
    #[error("DynamoDB table {table} did not become active within {waited:?}")]
    TableNotActive { table: String, waited: Duration },
    #[error("no free session ID after {0} attempts")]
    NoFreeId(u32),
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Option<i64>> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| malformed(format!("session attribute `{name}` is not an integer: {n}"))),
        Some(_) => Err(malformed(format!(
            "session attribute `{name}` is not a number"
        ))),
    }
}

/// Whether `item`, returned with a failed condition, is this very write
/// (`token`) at `version`: the SDK retried a request whose first attempt
/// succeeded but whose reply was lost.
fn is_own_write(item: Option<&HashMap<String, AttributeValue>>, version: u64, token: &str) -> bool {
    item.is_some_and(|item| {
        matches!(item.get(WRITE), Some(AttributeValue::S(w)) if w == token)
            && matches!(item.get(VERSION), Some(AttributeValue::N(v)) if v.parse() == Ok(version))
    })
}

impl DynamoDbStore {
    fn parse(
        &self,
        id: &Id,
        item: &HashMap<String, AttributeValue>,
        now: OffsetDateTime,
    ) -> Result<Option<Record>> {
        let expires_ms = number(item, &self.names.expiry_ms)?;
        decode_unexpired(
            id,
            expires_ms,
            now,
            || {
                number(item, VERSION)?.ok_or_else(|| {
                    malformed(format!("session item has no version attribute `{VERSION}`"))
                })
            },
            || match item.get(DATA) {
                Some(AttributeValue::B(blob)) => Ok(blob.as_ref()),
                Some(_) => Err(malformed(format!(
                    "session attribute `{DATA}` is not binary"
                ))),
                None => Err(malformed(format!(
                    "session item has no data attribute `{DATA}`"
                ))),
            },
        )
    }
}

#[async_trait]
impl SessionStore for DynamoDbStore {
    #[tracing::instrument(name = "dynamodb_create", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "PutItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.record_server();
        let data = record.encode()?;
        let token = Id::random();
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let item = self.item(record, data.clone(), token.as_str())?;
            let size = self.item_size(record, data.len(), token.as_str());
            let result = self
                .client
                .put_item()
                .table_name(&self.names.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#k) OR #ems <= :now")
                .expression_attribute_names("#k", &self.names.key)
                .expression_attribute_names("#ems", &self.names.expiry_ms)
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(unix_millis(now()).to_string()),
                )
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => match e.as_service_error() {
                    Some(service) if service.is_conditional_check_failed_exception() => {
                        let item = match service {
                            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item(),
                            _ => None,
                        };
                        if is_own_write(item, record.version, token.as_str()) {
                            return Ok(());
                        }
                        tracing::debug!("session ID taken, retrying with a fresh one");
                        record.id = Id::random();
                    }
                    _ => return Err(self.write_error("PutItem", size, e)),
                },
            }
        }
        Err(Error::backend(DynamoDbStoreError::NoFreeId(
            MAX_CREATE_ATTEMPTS,
        )))
    }

    #[tracing::instrument(name = "dynamodb_load", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "GetItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.record_server();
        let out = self.get_consistent(self.key(id)).await?;
        match out.item() {
            Some(item) => self.parse(id, item, now()),
            None => Ok(None),
        }
    }

    #[tracing::instrument(name = "dynamodb_save", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "PutItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty, expected_version))]
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        self.record_server();
        let data = record.encode()?;
        let token = Id::random();
        let size = self.item_size(record, data.len(), token.as_str());
        let item = self.item(record, data, token.as_str())?;
        let result = self
            .client
            .put_item()
            .table_name(&self.names.table)
            .set_item(Some(item))
            .condition_expression("#v = :expected AND (attribute_not_exists(#ems) OR #ems > :now)")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#ems", &self.names.expiry_ms)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(unix_millis(now()).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                    Ok(is_own_write(c.item(), record.version, token.as_str()))
                }
                _ => Err(self.write_error("PutItem", size, e)),
            },
        }
    }

    #[tracing::instrument(name = "dynamodb_delete", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "DeleteItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn delete(&self, id: &Id) -> Result<()> {
        self.record_server();
        let (k, v) = self.key(id);
        self.client
            .delete_item()
            .table_name(&self.names.table)
            .key(k, v)
            .send()
            .await
            .map_err(|e| request_error("DeleteItem", e))?;
        Ok(())
    }

    #[tracing::instrument(name = "dynamodb_touch", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "UpdateItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.record_server();
        let (k, v) = self.key(id);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.names.table)
            .key(k, v)
            .condition_expression(
                "attribute_exists(#k) AND (attribute_not_exists(#ems) OR #ems > :now)",
            )
            .expression_attribute_names("#k", &self.names.key)
            .expression_attribute_names("#e", &self.names.expiry)
            .expression_attribute_names("#ems", &self.names.expiry_ms)
            .expression_attribute_values(":now", AttributeValue::N(unix_millis(now()).to_string()));
        update = match expires_at {
            Some(at) => update
                .update_expression("SET #e = :e, #ems = :ems")
                .expression_attribute_values(":e", AttributeValue::N(ttl_seconds(at).to_string()))
                .expression_attribute_values(
                    ":ems",
                    AttributeValue::N(unix_millis(at).to_string()),
                ),
            None => update.update_expression("REMOVE #e, #ems"),
        };
        conditional("UpdateItem", update.send().await)
    }

    fn supports_user_index(&self) -> bool {
        true
    }

    #[tracing::instrument(name = "dynamodb_load_user_index", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "GetItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        self.record_server();
        self.load_index(user).await
    }

    #[tracing::instrument(name = "dynamodb_save_user_index", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "PutItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        self.record_server();
        self.save_index(user, index, expected_version).await
    }

    #[tracing::instrument(name = "dynamodb_delete_user_index", level = "debug", skip_all, fields(db.system = "dynamodb", db.operation = "DeleteItem", otel.kind = "client", server.address = tracing::field::Empty, server.port = tracing::field::Empty))]
    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        self.record_server();
        self.delete_index(user, expected_version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_seconds_round_up() {
        let at = |ms| session_core::store::from_unix_millis(ms).unwrap();
        assert_eq!(ttl_seconds(at(1_000)), 1);
        assert_eq!(ttl_seconds(at(1_001)), 2);
        assert_eq!(ttl_seconds(at(1_999)), 2);
        assert_eq!(ttl_seconds(at(0)), 0);
    }

    /// DynamoDB's own size check, which the store's estimate normally
    /// pre-empts, maps to `TooLarge` too. Needs the emulator, like the
    /// integration tests.
    #[tokio::test]
    async fn service_item_size_error_is_too_large() {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        let endpoint = std::env::var("DYNAMODB_ENDPOINT")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:8000".to_owned());
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .endpoint_url(&endpoint)
            .http_client(https_client())
            .build();
        let table = format!(
            "sessions-unit-{}",
            Id::random().as_str().replace(['-', '_'], "x")
        );
        let mut store = DynamoDbStore::new(Client::from_conf(config)).with_table_name(&table);
        store.create_table_if_missing().await.unwrap_or_else(|e| {
            panic!(
                "cannot reach DynamoDB at DYNAMODB_ENDPOINT={endpoint}: {e}; start the test \
                 servers with `eval \"$(scripts/services.sh up)\"`"
            )
        });
        store.max_item_size = usize::MAX;
        let mut data = session_core::store::Data::new();
        data.insert(
            "blob".into(),
            serde_json::Value::from("z".repeat(450 * 1024)).into(),
        );
        let mut r = Record::new(Id::random(), data, now(), None);
        let err = store.create(&mut r).await.unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { size, limit: MAX_ITEM_SIZE } if size > MAX_ITEM_SIZE),
            "{err:?}"
        );
        let _ = store.client.delete_table().table_name(&table).send().await;
    }

    #[test]
    fn endpoint_urls_name_host_and_port() {
        let server = |url| Server::from_url(url).map(|s| (s.address.to_string(), s.port));
        let named = |host: &str, port| Some((host.to_owned(), port));
        assert_eq!(
            server("http://127.0.0.1:8000"),
            named("127.0.0.1", Some(8000))
        );
        assert_eq!(
            server("http://localhost:8000/"),
            named("localhost", Some(8000))
        );
        assert_eq!(
            server("https://dynamodb.eu-west-1.amazonaws.com"),
            named("dynamodb.eu-west-1.amazonaws.com", Some(443))
        );
        assert_eq!(server("http://[::1]:8000/x"), named("::1", Some(8000)));
        assert_eq!(server("http://[::1]"), named("::1", Some(80)));
        assert_eq!(server("https://u:p@host:9/"), named("host", Some(9)));
        assert_eq!(server("host:8000"), None);
        assert_eq!(server("http://:8000"), None);
        assert_eq!(server("http://host:port"), None);
    }

    #[test]
    fn own_write_is_recognised_by_token_and_version() {
        let item = HashMap::from([
            (WRITE.to_owned(), AttributeValue::S("tok".into())),
            (VERSION.to_owned(), AttributeValue::N("3".into())),
        ]);
        assert!(is_own_write(Some(&item), 3, "tok"));
        assert!(!is_own_write(Some(&item), 4, "tok"));
        assert!(!is_own_write(Some(&item), 3, "other"));
        assert!(!is_own_write(None, 3, "tok"));
    }
}
