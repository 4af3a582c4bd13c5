//! Routing against a real MariaDB (or MySQL) server, used as the primary.
//!
//! The URL comes from `MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/stateful`); start the server with
//! `eval "$(scripts/services.sh up)"`. An unreachable server fails the
//! tests: nothing here is skipped.

#![cfg(feature = "mysql")]

use std::convert::Infallible;
use std::time::Duration;

use db_router::{DbHandle, DbRouter, FallbackReason, Position, Role, RouterLayer};
use http::{Request, Response};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{MySql, MySqlConnection};
use test_support::START_HINT;
use test_support::mariadb::url as mysql_url;
use test_support::unique as unique_tag;
use tower::{ServiceBuilder, ServiceExt};

async fn primary() -> MySqlPool {
    let url = mysql_url();
    let connect = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url);
    let pool = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(pool)) => pool,
        Ok(Err(e)) => panic!("cannot connect to MariaDB/MySQL at {url}: {e}; {START_HINT}"),
        Err(_) => panic!("connecting to MariaDB/MySQL at {url} timed out; {START_HINT}"),
    };
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS db_router_items \
         (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(200) NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool
}

async fn count(conn: &mut MySqlConnection, tag: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM db_router_items WHERE tag = ?")
        .bind(tag)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn assert_refuses_write(conn: &mut MySqlConnection) {
    let err = sqlx::query("INSERT INTO db_router_items (tag) VALUES ('must-fail')")
        .execute(&mut *conn)
        .await
        .expect_err("a reader must refuse writes");
    assert!(err.to_string().contains("READ ONLY"), "{err}");
}

#[tokio::test]
async fn readers_are_read_only_and_transactions_write_on_the_primary() {
    let router = DbRouter::builder(primary().await).build().await.unwrap();
    let tag = unique_tag("tx");

    let mut tx = router.begin().await.unwrap();
    sqlx::query("INSERT INTO db_router_items (tag) VALUES (?)")
        .bind(&tag)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        count(&mut tx, &tag).await,
        1,
        "reads in the transaction see its writes"
    );
    tx.commit().await.unwrap();

    let mut conn = router.reader().await.unwrap();
    assert_eq!(count(&mut conn, &tag).await, 1);
    assert_refuses_write(&mut conn).await;

    let handle = DbHandle::new(router.clone(), Role::Write, None);
    let mut conn = handle.reader().await.unwrap();
    assert_refuses_write(&mut conn).await;

    let stats = router.stats();
    assert_eq!(stats.writes, 1);
    assert_eq!(stats.primary_reads, 2);
}

#[tokio::test]
async fn replica_probe_guard_and_write_window() {
    // The server doubles as its own "replica": it is not replicating, so the
    // probe finds no replica status and treats it as a plain healthy server.
    let router = DbRouter::builder(primary().await)
        .with_replica_url(mysql_url())
        .with_write_window(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let replica = &router.stats().replicas[0];
    assert!(replica.healthy && replica.within_lag, "{replica:?}");

    let mut conn = router.reader().await.unwrap();
    assert_refuses_write(&mut conn).await;
    drop(conn);
    assert_eq!(router.stats().replica_reads, 1);

    let tag = unique_tag("window");
    sqlx::query("INSERT INTO db_router_items (tag) VALUES (?)")
        .bind(&tag)
        .execute(router.write_pool())
        .await
        .unwrap();
    let token = router.write_token().await.unwrap();
    match token.position() {
        // Binary log off: no GTID, the write window applies.
        None => {
            let mut conn = router.reader_with(Some(&token)).await.unwrap();
            assert_eq!(count(&mut conn, &tag).await, 1);
            assert_eq!(router.stats().fallbacks.get(FallbackReason::RecentWrite), 1);
            tokio::time::sleep(Duration::from_millis(350)).await;
            let _conn = router.reader_with(Some(&token)).await.unwrap();
            assert_eq!(
                router.stats().replica_reads,
                2,
                "after the window replicas serve"
            );
        }
        Some(Position::Gtid(gtid)) => {
            // Binary log on: the "replica" reports no slave position, so a
            // token read goes to the primary.
            assert!(!gtid.entries().is_empty());
            let mut conn = router.reader_with(Some(&token)).await.unwrap();
            assert_eq!(count(&mut conn, &tag).await, 1);
        }
        Some(other) => panic!("unexpected position {other:?}"),
    }
}

async fn app_handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let db = request
        .extensions()
        .get::<DbHandle<MySql>>()
        .expect("RouterLayer installed")
        .clone();
    if request.method() == http::Method::POST {
        sqlx::query("INSERT INTO db_router_items (tag) VALUES (?)")
            .bind(request.body())
            .execute(db.write_pool())
            .await
            .unwrap();
        return Ok(Response::new("created".to_owned()));
    }
    let tag = request.uri().query().unwrap_or_default().to_owned();
    let mut conn = db.reader().await.unwrap();
    Ok(Response::new(count(&mut conn, &tag).await.to_string()))
}

#[tokio::test]
async fn tower_layer_reads_on_get_and_writes_on_post() {
    let router = DbRouter::builder(primary().await).build().await.unwrap();
    let app = ServiceBuilder::new()
        .layer(RouterLayer::new(router.clone()))
        .service_fn(app_handler);
    let tag = unique_tag("layer");

    let post = Request::post("/").body(tag.clone()).unwrap();
    let response = app.clone().oneshot(post).await.unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("db_causal=v1."), "{cookie}");

    let get = Request::get(format!("/?{tag}"))
        .header("cookie", cookie.split(';').next().unwrap())
        .body(String::new())
        .unwrap();
    let response = app.oneshot(get).await.unwrap();
    assert_eq!(response.body(), "1");
    let stats = router.stats();
    assert_eq!(
        (stats.writes, stats.primary_reads, stats.tokens_issued),
        (1, 1, 1)
    );
}
