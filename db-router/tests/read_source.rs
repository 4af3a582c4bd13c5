//! `reader_with_source`: the connection and the server it came from, on
//! real SQLite files (no server needed). Each file answers
//! `SELECT name FROM whoami` with its own name, so the source named can be
//! checked against the database that actually served the read.

#![cfg(feature = "sqlite")]

use db_router::{DbHandle, DbRouter, ReadSource, Role};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

/// A fresh database file whose `whoami` table holds `name`.
async fn database(name: &str) -> SqliteConnectOptions {
    let dir = std::env::temp_dir().join(format!("db-router-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options.clone()).await.unwrap();
    sqlx::query("CREATE TABLE whoami (name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO whoami VALUES (?)")
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    options
}

async fn whoami(conn: &mut sqlx::SqliteConnection) -> String {
    sqlx::query_scalar("SELECT name FROM whoami")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_source_names_the_server_that_served_the_read() {
    let primary = SqlitePool::connect_with(database("primary").await)
        .await
        .unwrap();
    let router = DbRouter::builder(primary)
        .with_named_replica("replica-a", database("replica-a").await)
        .build()
        .await
        .unwrap();

    let (mut conn, source) = router.reader_with_source(None).await.unwrap();
    assert_eq!(source, ReadSource::Replica("replica-a".into()));
    assert_eq!(source.to_string(), "replica replica-a");
    assert_eq!(whoami(&mut conn).await, "replica-a");
    drop(conn);

    // A write request reads from the primary, and says so.
    let handle = DbHandle::new(router.clone(), Role::Write, None);
    let (mut conn, source) = handle.reader_with_source().await.unwrap();
    assert_eq!(source, ReadSource::Primary);
    assert_eq!(source.to_string(), "primary");
    assert_eq!(whoami(&mut conn).await, "primary");
    drop(conn);

    // A read request goes to the replica, as the router's reader does.
    let handle = DbHandle::new(router.clone(), Role::Read, None);
    let (mut conn, source) = handle.reader_with_source().await.unwrap();
    assert_eq!(source, ReadSource::Replica("replica-a".into()));
    assert_eq!(whoami(&mut conn).await, "replica-a");
    assert_eq!(router.stats().replica_reads, 2);
}

#[tokio::test]
async fn without_replicas_the_source_is_the_primary() {
    let primary = SqlitePool::connect_with(database("alone").await)
        .await
        .unwrap();
    let router = DbRouter::builder(primary).build().await.unwrap();
    let (mut conn, source) = router.reader_with_source(None).await.unwrap();
    assert_eq!(source, ReadSource::Primary);
    assert_eq!(whoami(&mut conn).await, "alone");
}
