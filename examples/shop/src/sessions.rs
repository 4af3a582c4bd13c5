//! The session layer of the store the [`Config`] names.

use std::time::Duration;

use session_core::{Migration, SessionLayer};
use session_stores::cookie::{CookieStore, Key};
use session_stores::{DynamoDbStore, MemcachedStore, MemoryStore, RedisStore};

use crate::config::{Config, StoreKind};
use crate::error::StartError;

/// The session layer for `config`, connecting to the store it names.
///
/// # Errors
///
/// The store cannot be reached (Redis, DynamoDB, Memcached); the error names the
/// variable that points to it.
pub async fn session_layer(config: &Config) -> Result<SessionLayer, StartError> {
    let layer = match config.session_store {
        StoreKind::Memory => SessionLayer::new(MemoryStore::default()),
        StoreKind::Cookie => {
            let store = match &config.cookie_keys {
                Some(keys) => cookie_store(keys, "COOKIE_KEYS")?,
                None => {
                    tracing::warn!(
                        "COOKIE_KEYS not set: sealing cookies with a random key of this process only"
                    );
                    CookieStore::new(Key::generate())
                }
            };
            SessionLayer::client_side(store)
        }
        StoreKind::Redis => {
            let builder = RedisStore::builder()
                .with_key_prefix("shop:session:")
                .with_near_cache(config.redis_near_cache)
                .with_wait_replicas(config.redis_wait_replicas, config.redis_wait_timeout);
            let store = if !config.redis_cluster_urls.is_empty() {
                builder
                    .connect_cluster(&config.redis_cluster_urls)
                    .await
                    .map_err(|e| StartError::new("REDIS_CLUSTER_URLS", e.to_string()))?
            } else if !config.redis_sentinel_urls.is_empty() {
                builder
                    .connect_sentinel(&config.redis_sentinel_urls, &config.redis_sentinel_master)
                    .await
                    .map_err(|e| StartError::new("REDIS_SENTINEL_URLS", e.to_string()))?
            } else {
                let url = config.redis_url.as_deref().unwrap_or_default();
                builder
                    .connect(url)
                    .await
                    .map_err(|e| StartError::new("REDIS_URL", e.to_string()))?
            };
            SessionLayer::new(store)
        }
        StoreKind::DynamoDb => SessionLayer::new(
            dynamodb_store(
                config.dynamodb_endpoint.as_deref(),
                &config.dynamodb_table,
                config.dynamodb_create_table,
            )
            .await?,
        ),
        StoreKind::Memcached => SessionLayer::new(
            memcached_store(
                config.memcached_urls.as_deref().unwrap_or_default(),
                "MEMCACHED_URLS",
            )
            .await?,
        ),
    };
    let layer = match migration(config).await? {
        Some(migration) => layer.with_migration(migration),
        None => layer,
    };
    Ok(layer
        .with_cookie_name("shop_session")
        .with_secure(config.secure_cookie)
        .with_max_attempts(config.session_max_attempts)
        .with_store_timeout(config.session_store_timeout))
}

/// The store `SESSION_MIGRATE_FROM` names, in `SESSION_MIGRATION_PHASE`.
async fn migration(config: &Config) -> Result<Option<Migration>, StartError> {
    let Some(from) = config.migrate_from else {
        return Ok(None);
    };
    let setting = |value: &Option<String>| value.clone().unwrap_or_default();
    let migration = match from {
        StoreKind::Cookie => Migration::from_cookie(cookie_store(
            &setting(&config.old_cookie_keys),
            "OLD_COOKIE_KEYS",
        )?),
        StoreKind::Redis => Migration::from_store(
            RedisStore::builder()
                .with_key_prefix("shop:session:")
                .connect(&setting(&config.old_redis_url))
                .await
                .map_err(|e| StartError::new("OLD_REDIS_URL", e.to_string()))?,
        ),
        StoreKind::DynamoDb => Migration::from_store(
            dynamodb_store(
                config
                    .old_dynamodb_endpoint
                    .as_deref()
                    .or(config.dynamodb_endpoint.as_deref()),
                &setting(&config.old_dynamodb_table),
                // The old table exists; never create it.
                false,
            )
            .await?,
        ),
        StoreKind::Memcached => Migration::from_store(
            memcached_store(&setting(&config.old_memcached_urls), "OLD_MEMCACHED_URLS").await?,
        ),
        // Rejected by the configuration: an in-process store has nothing
        // another instance could move.
        StoreKind::Memory => return Ok(None),
    };
    tracing::info!(?from, phase = ?config.migration_phase, "moving sessions between stores");
    Ok(Some(migration.with_phase(config.migration_phase)))
}

fn cookie_store(keys: &str, var: &'static str) -> Result<CookieStore, StartError> {
    CookieStore::from_base64_keys(keys).map_err(|e| StartError::new(var, e.to_string()))
}

async fn memcached_store(urls: &str, var: &'static str) -> Result<MemcachedStore, StartError> {
    MemcachedStore::builder()
        .with_key_prefix("shop:session:")
        .connect(urls)
        .await
        .map_err(|e| StartError::new(var, e.to_string()))
}

/// The DynamoDB store the shop keeps sessions in: on `endpoint` (else
/// AWS's), in `table`, which is created (with its TTL on) when missing if
/// `create_table`. Region and credentials come from the usual `AWS_*`
/// variables.
///
/// # Errors
///
/// The table cannot be created or checked within 15 s.
pub async fn dynamodb_store(
    endpoint: Option<&str>,
    table: &str,
    create_table: bool,
) -> Result<DynamoDbStore, StartError> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let var = if endpoint.is_some() {
        "DYNAMODB_ENDPOINT"
    } else {
        "DYNAMODB_TABLE"
    };
    // Idle connections are dropped before servers that close them after a
    // few seconds (such as the emulator) do.
    let http = aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(Duration::from_secs(2))
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let store = DynamoDbStore::from_sdk_config(&sdk).with_table_name(table);
    if !create_table {
        return Ok(store);
    }
    match tokio::time::timeout(Duration::from_secs(15), store.create_table_if_missing()).await {
        Ok(Ok(())) => Ok(store),
        Ok(Err(e)) => Err(StartError::new(var, e.to_string())),
        Err(_) => Err(StartError::new(var, "no answer within 15 s".to_owned())),
    }
}
