//! The session layer of the store the [`Config`] names.

use std::time::Duration;

use session_core::SessionLayer;
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
                Some(keys) => CookieStore::from_base64_keys(keys)
                    .map_err(|e| StartError::new("COOKIE_KEYS", e.to_string()))?,
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
        StoreKind::DynamoDb => SessionLayer::new(dynamodb_store(config).await?),
        StoreKind::Memcached => {
            let urls = config.memcached_urls.as_deref().unwrap_or_default();
            let store = MemcachedStore::builder()
                .with_key_prefix("shop:session:")
                .connect(urls)
                .await
                .map_err(|e| StartError::new("MEMCACHED_URLS", e.to_string()))?;
            SessionLayer::new(store)
        }
    };
    Ok(layer
        .with_cookie_name("shop_session")
        .with_secure(config.secure_cookie)
        .with_max_attempts(config.session_max_attempts)
        .with_store_timeout(config.session_store_timeout))
}

async fn dynamodb_store(config: &Config) -> Result<DynamoDbStore, StartError> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let var = if config.dynamodb_endpoint.is_some() {
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
    if let Some(endpoint) = &config.dynamodb_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk))
        .with_table_name(&config.dynamodb_table);
    if !config.dynamodb_create_table {
        return Ok(store);
    }
    match tokio::time::timeout(Duration::from_secs(15), store.create_table_if_missing()).await {
        Ok(Ok(())) => Ok(store),
        Ok(Err(e)) => Err(StartError::new(var, e.to_string())),
        Err(_) => Err(StartError::new(var, "no answer within 15 s".to_owned())),
    }
}
