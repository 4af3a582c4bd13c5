//! Connecting over TLS when the application has installed no rustls crypto
//! provider: a clear error, and no provider installed behind its back.
//!
//! A test binary of its own, so that no other test has installed one. No
//! server is needed: the store fails before it opens a connection.
#![cfg(feature = "redis")]

use session_core::Error;
use session_stores::RedisStore;

fn assert_names_the_fix(err: Error) {
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("no rustls crypto provider is installed")
            && message.contains("rustls::crypto::ring::default_provider().install_default()"),
        "{message}"
    );
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the store installed a crypto provider"
    );
}

#[tokio::test]
async fn tls_url_without_a_provider_is_a_clear_error() {
    let err = RedisStore::connect("rediss://127.0.0.1:1")
        .await
        .unwrap_err();
    assert_names_the_fix(err);
}

#[tokio::test]
async fn tls_cluster_urls_without_a_provider_are_a_clear_error() {
    let err = RedisStore::connect_cluster(["redis://127.0.0.1:1", "rediss://127.0.0.1:2"])
        .await
        .unwrap_err();
    assert_names_the_fix(err);
}

#[tokio::test]
async fn tls_client_without_a_provider_is_a_clear_error() {
    let client = redis::Client::open("rediss://127.0.0.1:1").unwrap();
    let err = RedisStore::builder()
        .connect_with_client(client)
        .await
        .unwrap_err();
    assert_names_the_fix(err);
}
