//! Routing against real SQLite databases (files and in-memory); needs no
//! server. Replicas are separate database files, so a read shows which
//! database served it (`SELECT name FROM whoami`), and a "replica" never
//! receives the primary's writes: the most stale replica there is.

#![cfg(feature = "sqlite")]

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use db_router::{
    CausalToken, DbHandle, DbRouter, Error, FallbackReason, HeaderCarrier, ReadFallback,
    ReadSource, Role, RouterBuilder, RouterLayer, Selection,
};
use http::{Method, Request, Response, StatusCode};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{Sqlite, SqliteConnection};
use tower::{ServiceBuilder, ServiceExt};

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A fresh database file holding `whoami(name)` = `name` and an empty
/// `items` table.
async fn database(name: &str) -> (PathBuf, SqliteConnectOptions) {
    let dir = std::env::temp_dir().join(format!("db-router-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{name}-{}.db",
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    ));
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
    sqlx::query("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    (path, options)
}

async fn whoami(conn: &mut SqliteConnection) -> String {
    sqlx::query_scalar("SELECT name FROM whoami")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn item_count(conn: &mut SqliteConnection, v: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM items WHERE v = ?")
        .bind(v)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn primary_pool() -> SqlitePool {
    let (_, options) = database("primary").await;
    SqlitePool::connect_with(options).await.unwrap()
}

/// A router on a fresh primary and one fresh replica, still to be built.
async fn with_a_replica() -> RouterBuilder<Sqlite> {
    let (_, replica) = database("replica").await;
    DbRouter::builder(primary_pool().await).with_replica(replica)
}

#[tokio::test]
async fn without_replicas_reads_use_a_read_only_primary() {
    let primary = SqlitePool::connect("sqlite::memory:").await.unwrap();
    sqlx::query("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&primary)
        .await
        .unwrap();
    let router = DbRouter::builder(primary).build().await.unwrap();
    assert!(!router.has_replicas());

    sqlx::query("INSERT INTO items (v) VALUES ('a')")
        .execute(router.write_pool())
        .await
        .unwrap();

    let mut conn = router.reader().await.unwrap();
    assert_eq!(
        item_count(&mut conn, "a").await,
        1,
        "the read pool shares the in-memory database"
    );
    let err = sqlx::query("INSERT INTO items (v) VALUES ('b')")
        .execute(&mut *conn)
        .await
        .expect_err("a reader must refuse writes");
    assert!(err.to_string().contains("readonly"), "{err}");

    let stats = router.stats();
    assert_eq!(stats.writes, 1);
    assert_eq!(stats.primary_reads, 1);
    assert_eq!(stats.replica_reads, 0);
    assert_eq!(
        stats.fallbacks.total(),
        0,
        "no replicas configured is not a fallback"
    );
}

#[tokio::test]
async fn round_robin_alternates_and_least_busy_avoids_busy_replicas() {
    let (_, r1) = database("replica-1").await;
    let (_, r2) = database("replica-2").await;
    let router = DbRouter::builder(primary_pool().await)
        .with_named_replica("one", r1.clone())
        .with_named_replica("two", r2.clone())
        .build()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut conn = router.reader().await.unwrap();
        seen.push(whoami(&mut conn).await);
    }
    assert_ne!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    assert_eq!(seen[1], seen[3]);
    assert!(seen.iter().all(|n| n.starts_with("replica-")), "{seen:?}");

    let router = DbRouter::builder(primary_pool().await)
        .with_named_replica("one", r1)
        .with_named_replica("two", r2)
        .with_selection(Selection::LeastBusy)
        .build()
        .await
        .unwrap();
    // Connections dropped by the first health probe go back to their pools
    // from spawned tasks: let them land.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut held = router.reader().await.unwrap();
    let busy = whoami(&mut held).await;
    for _ in 0..5 {
        let mut conn = router.reader().await.unwrap();
        let name = whoami(&mut conn).await;
        drop(conn);
        // A dropped connection goes back to its pool from a spawned task.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_ne!(
            name, busy,
            "least-busy must avoid the replica holding a connection"
        );
    }
    let stats = router.stats();
    assert_eq!(stats.replica_reads, 6);
    assert_eq!(stats.replicas.len(), 2);
    assert_eq!(stats.replicas.iter().map(|r| r.reads).sum::<u64>(), 6);
}

#[tokio::test]
async fn a_broken_replica_is_banned_and_reads_fall_back() {
    let missing = std::env::temp_dir().join("db-router-tests-no-such-dir/replica.db");
    let broken = SqliteConnectOptions::new()
        .filename(&missing)
        .read_only(true);
    let router = DbRouter::builder(primary_pool().await)
        .with_named_replica("broken", broken.clone())
        .build()
        .await
        .unwrap();
    let stats = router.stats();
    assert!(!stats.replicas[0].healthy, "the first probe must ban it");
    assert_eq!(stats.replicas[0].bans, 1);
    assert!(stats.replicas[0].last_error.is_some());

    let mut conn = router.reader().await.unwrap();
    assert_eq!(whoami(&mut conn).await, "primary");
    assert_eq!(
        router
            .stats()
            .fallbacks
            .get(FallbackReason::ReplicasUnhealthy),
        1
    );

    let strict = DbRouter::builder(primary_pool().await)
        .with_replica(broken)
        .with_fallback(ReadFallback::Fail)
        .build()
        .await
        .unwrap();
    match strict.reader().await {
        Err(Error::NoReplicaAvailable { reason }) => {
            assert_eq!(reason, FallbackReason::ReplicasUnhealthy)
        }
        other => panic!("expected NoReplicaAvailable, got {other:?}"),
    }
}

#[tokio::test]
async fn position_less_tokens_keep_reads_on_the_primary_for_the_window() {
    let router = with_a_replica()
        .await
        .with_write_window(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    sqlx::query("INSERT INTO items (v) VALUES ('w')")
        .execute(router.write_pool())
        .await
        .unwrap();
    let token = router.write_token().await.unwrap();
    assert_eq!(token.position(), None, "SQLite has no replication position");

    let mut conn = router.reader_with(Some(&token)).await.unwrap();
    assert_eq!(whoami(&mut conn).await, "primary");
    assert_eq!(
        item_count(&mut conn, "w").await,
        1,
        "the writer sees its write"
    );
    drop(conn);

    // Without the token the (never updated) replica answers: stale.
    let mut conn = router.reader().await.unwrap();
    assert_eq!(whoami(&mut conn).await, "replica");
    assert_eq!(item_count(&mut conn, "w").await, 0);
    drop(conn);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut conn = router.reader_with(Some(&token)).await.unwrap();
    assert_eq!(
        whoami(&mut conn).await,
        "replica",
        "after the window replicas serve again"
    );

    let stats = router.stats();
    assert_eq!(stats.fallbacks.get(FallbackReason::RecentWrite), 1);
    assert_eq!(stats.token_reads, 2);
    assert_eq!(stats.tokens_issued, 1);
}

#[tokio::test]
async fn transactions_run_on_the_primary() {
    let router = with_a_replica().await.build().await.unwrap();
    let mut tx = router.begin().await.unwrap();
    assert_eq!(whoami(&mut tx).await, "primary");
    sqlx::query("INSERT INTO items (v) VALUES ('tx')")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(item_count(&mut tx, "tx").await, 1);
    tx.commit().await.unwrap();
    assert_eq!(router.stats().writes, 1);
}

#[tokio::test]
async fn handles_for_write_work_read_from_the_read_only_primary() {
    let router = with_a_replica().await.build().await.unwrap();
    let handle = DbHandle::new(router.clone(), Role::Write, None);
    let mut conn = handle.reader().await.unwrap();
    assert_eq!(whoami(&mut conn).await, "primary");
    let err = sqlx::query("INSERT INTO items (v) VALUES ('x')")
        .execute(&mut *conn)
        .await
        .expect_err("a reader on the primary must refuse writes");
    assert!(err.to_string().contains("readonly"), "{err}");

    let handle = DbHandle::new(router, Role::Read, None);
    let mut conn = handle.reader().await.unwrap();
    assert_eq!(whoami(&mut conn).await, "replica");
}

/// GET answers `<database>:<count of items named by the query string>`,
/// POST inserts the body as an item.
async fn app_handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let db = request
        .extensions()
        .get::<DbHandle<Sqlite>>()
        .expect("RouterLayer installed")
        .clone();
    if request.method() == Method::POST {
        sqlx::query("INSERT INTO items (v) VALUES (?)")
            .bind(request.into_body())
            .execute(db.write_pool())
            .await
            .unwrap();
        return Ok(Response::new("ok".to_owned()));
    }
    let v = request.uri().query().unwrap_or_default().to_owned();
    let mut conn = db.reader().await.unwrap();
    let name = whoami(&mut conn).await;
    let n = item_count(&mut conn, &v).await;
    Ok(Response::new(format!("{name}:{n}")))
}

#[tokio::test]
async fn tower_layer_routes_by_method_and_carries_the_token_in_a_cookie() {
    let router = with_a_replica()
        .await
        .with_write_window(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let app = ServiceBuilder::new()
        .layer(RouterLayer::new(router.clone()))
        .service_fn(app_handler);

    let response = app
        .clone()
        .oneshot(Request::get("/?x").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.body(), "replica:0", "GET reads from a replica");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a read sets no token"
    );

    let response = app
        .clone()
        .oneshot(Request::post("/").body("x".to_owned()).unwrap())
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in [
        "db_causal=v1.",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=60",
        "Path=/",
    ] {
        assert!(set_cookie.contains(part), "{set_cookie} lacks {part}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let token: CausalToken = cookie.trim_start_matches("db_causal=").parse().unwrap();
    assert!(token.age() < Duration::from_secs(5));

    let response = app
        .clone()
        .oneshot(
            Request::get("/?x")
                .header("cookie", format!("theme=dark; {cookie}"))
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.body(),
        "primary:1",
        "the writer's next GET sees the write"
    );

    let response = app
        .clone()
        .oneshot(Request::get("/?x").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.body(),
        "replica:0",
        "another user reads the replica"
    );

    let response = app
        .clone()
        .oneshot(
            Request::get("/?x")
                .header("cookie", "db_causal=garbage")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a bad cookie is ignored");
    assert_eq!(response.body(), "replica:0");

    let stats = router.stats();
    assert_eq!(stats.writes, 1);
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.fallbacks.get(FallbackReason::RecentWrite), 1);
}

#[tokio::test]
async fn header_carrier_round_trips_the_token() {
    let router = with_a_replica().await.build().await.unwrap();
    let app = ServiceBuilder::new()
        .layer(RouterLayer::new(router).with_carrier(HeaderCarrier::new()))
        .service_fn(app_handler);
    let response = app
        .clone()
        .oneshot(Request::post("/").body("h".to_owned()).unwrap())
        .await
        .unwrap();
    let token = response.headers()["x-db-causal-token"].clone();
    assert!(response.headers().get("set-cookie").is_none());
    let response = app
        .oneshot(
            Request::get("/?h")
                .header("x-db-causal-token", token)
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.body(), "primary:1");
}

#[cfg(feature = "axum")]
mod axum_extractor {
    use super::*;
    use axum::routing::get;
    use http_body_util::BodyExt;

    async fn read(db: DbHandle<Sqlite>) -> String {
        let mut conn = db.reader().await.unwrap();
        format!("{}:{:?}", whoami(&mut conn).await, db.role())
    }

    async fn write(db: DbHandle<Sqlite>) -> String {
        sqlx::query("INSERT INTO items (v) VALUES ('axum')")
            .execute(db.write_pool())
            .await
            .unwrap();
        let token = db.record_write_token().await.unwrap();
        token.to_string()
    }

    async fn body(response: axum::response::Response) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn extractor_works_and_names_the_missing_layer() {
        let router = with_a_replica().await.build().await.unwrap();
        let app = axum::Router::new()
            .route("/", get(read).post(write))
            .layer(RouterLayer::new(router));

        let response = app
            .clone()
            .oneshot(Request::get("/").body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(body(response).await, "replica:Read");

        let response = app
            .clone()
            .oneshot(Request::post("/").body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        let returned = body(response).await;
        assert!(
            cookie.starts_with(&format!("db_causal={returned};")),
            "{cookie} vs {returned}"
        );

        let bare = axum::Router::new().route("/", get(read));
        let response = bare
            .oneshot(Request::get("/").body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body(response).await.contains("is `RouterLayer` installed"));
    }
}

#[tokio::test]
async fn the_monitor_stops_when_the_router_is_dropped() {
    // Pools without idle timeout or lifetime spawn no maintenance tasks, so
    // the monitor is the only task the router leaves running.
    let quiet = || {
        sqlx::pool::PoolOptions::<Sqlite>::new()
            .idle_timeout(None)
            .max_lifetime(None)
    };
    let (_, primary) = database("primary").await;
    let primary = quiet().connect_with(primary).await.unwrap();
    let (_, replica) = database("replica").await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let baseline = tasks();

    let router = DbRouter::builder(primary)
        .with_replica(replica)
        .with_read_pool_options(quiet())
        .with_health_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let rounds = router.stats().health_checks;
    assert!(
        rounds >= 3,
        "the monitor probes on its own ({rounds} rounds)"
    );
    assert!(tasks() > baseline, "the monitor runs as a task");

    drop(router);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(tasks(), baseline, "dropping the router stops the monitor");
}

#[tokio::test]
async fn reader_with_source_names_the_database_that_served_the_read() {
    let (_, replica) = database("replica-a").await;
    let router = DbRouter::builder(primary_pool().await)
        .with_named_replica("replica-a", replica)
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
    assert_eq!(
        (source.to_string(), whoami(&mut conn).await),
        ("primary".into(), "primary".into())
    );
    drop(conn);

    // A read request goes to the replica, as DbHandle::reader does.
    let handle = DbHandle::new(router.clone(), Role::Read, None);
    let (mut conn, source) = handle.reader_with_source().await.unwrap();
    assert_eq!(source, ReadSource::Replica("replica-a".into()));
    assert_eq!(whoami(&mut conn).await, "replica-a");
    assert_eq!(router.stats().replica_reads, 2);
}

#[tokio::test]
async fn without_replicas_reader_with_source_names_the_primary() {
    let router = DbRouter::builder(primary_pool().await)
        .build()
        .await
        .unwrap();
    let (mut conn, source) = router.reader_with_source(None).await.unwrap();
    assert_eq!(source, ReadSource::Primary);
    assert_eq!(whoami(&mut conn).await, "primary");
}
