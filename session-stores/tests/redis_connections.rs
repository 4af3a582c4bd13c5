//! The Redis store built from a client or a connection the application
//! already has, against the shared servers of `scripts/services.sh`
//! (`REDIS_URL`, `REDIS_CLUSTER_URLS`, `REDIS_TLS_URL`, `REDIS_TLS_CA`).
//! The stores built from URLs are tested in `redis.rs`.
#![cfg(feature = "redis")]

use std::future::{Future, ready};

use redis::cluster::ClusterClient;
use session_core::Error;
use session_stores::RedisStore;

fn require_env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!("{name} is not set; run `eval \"$(scripts/services.sh up)\"` first")
        })
}

fn client() -> redis::Client {
    redis::Client::open(require_env("REDIS_URL")).expect("REDIS_URL is a Redis URL")
}

fn cluster_client() -> ClusterClient {
    let urls = require_env("REDIS_CLUSTER_URLS");
    ClusterClient::new(urls.split(',').map(str::trim)).expect("REDIS_CLUSTER_URLS are Redis URLs")
}

/// Runs session-core's conformance suite on the stores `make_store` builds.
async fn assert_conforms<F, Fut>(make_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = session_core::Result<RedisStore>>,
{
    session_core::test_suite::run(|| async {
        make_store()
            .await
            .unwrap_or_else(|e| panic!("cannot build the store: {e}; are the servers up?"))
    })
    .await
    .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_from_a_client_passes_the_conformance_suite() {
    let client = client();
    assert_conforms(|| RedisStore::builder().connect_with_client(client.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_with_near_cache_from_a_client_passes_the_conformance_suite() {
    // The client speaks RESP2; the store's own connection speaks RESP3.
    let client = client();
    assert_conforms(|| {
        RedisStore::builder()
            .with_near_cache(10_000)
            .connect_with_client(client.clone())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_on_a_connection_passes_the_conformance_suite() {
    let conn = client()
        .get_connection_manager()
        .await
        .expect("Redis at REDIS_URL");
    assert_conforms(|| ready(RedisStore::builder().build_with_connection(conn.clone()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_from_a_cluster_client_passes_the_conformance_suite() {
    let client = cluster_client();
    assert_conforms(|| RedisStore::builder().connect_with_cluster_client(client.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_on_a_cluster_connection_passes_the_conformance_suite() {
    let conn = cluster_client()
        .get_async_connection()
        .await
        .expect("the Redis Cluster at REDIS_CLUSTER_URLS");
    assert_conforms(|| ready(RedisStore::builder().build_with_cluster_connection(conn.clone())))
        .await;
}

#[tokio::test]
async fn store_from_a_tls_client_works_once_a_provider_is_installed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(require_env("REDIS_TLS_CA")).expect("the CA at REDIS_TLS_CA");
    let client = redis::Client::build_with_tls(
        require_env("REDIS_TLS_URL"),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .expect("REDIS_TLS_URL is a rediss:// URL");
    let store = RedisStore::builder()
        .connect_with_client(client)
        .await
        .expect("TLS Redis at REDIS_TLS_URL");
    let id = session_core::Id::random();
    assert!(
        session_core::SessionStore::load(&store, &id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn near_cache_on_a_connection_of_the_application_is_refused() {
    let near = || RedisStore::builder().with_near_cache(100);
    let conn = client()
        .get_connection_manager()
        .await
        .expect("Redis at REDIS_URL");
    let errors = [
        near().build_with_connection(conn).unwrap_err(),
        near()
            .build_with_cluster_connection(
                cluster_client()
                    .get_async_connection()
                    .await
                    .expect("the Redis Cluster at REDIS_CLUSTER_URLS"),
            )
            .unwrap_err(),
        near()
            .connect_with_cluster_client(cluster_client())
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::Backend(_)), "{err:?}");
        assert!(err.to_string().contains("near cache"), "{err}");
    }
}
