//! `SessionCarrier` over SQLite: the causal token of a write travels in the
//! user's session, so that user's next read sees the write while a reader
//! without the token is served by a (deliberately stale) replica.
//!
//! The "replica" is a second SQLite file that never receives the writes,
//! which makes a read served by it recognisable.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use db_router::{DbHandle, DbRouter, FallbackReason, RouterLayer, SessionCarrier};
use http::{Request, StatusCode};
use session_core::{Session, SessionLayer};
use session_stores::MemoryStore;
use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use test_support::TempDir;
use tower::ServiceExt as _;

struct Files {
    dir: TempDir,
}

impl Files {
    fn new(test: &str) -> Self {
        Files {
            dir: TempDir::new(&format!("db-router-session-{test}")),
        }
    }

    async fn pool(&self, name: &str) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(self.dir.join(name))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }
}

/// A primary and a stale replica (a separate file).
async fn router(files: &Files) -> DbRouter<Sqlite> {
    let primary = files.pool("primary.db").await;
    let replica = files.pool("replica.db").await;
    DbRouter::builder(primary)
        .with_replica((*replica.connect_options()).clone())
        .build()
        .await
        .unwrap()
}

async fn count(db: DbHandle<Sqlite>) -> String {
    let mut conn = db.reader().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    n.to_string()
}

async fn add(db: DbHandle<Sqlite>) -> &'static str {
    sqlx::query("INSERT INTO notes VALUES ('hello')")
        .execute(db.write_pool())
        .await
        .unwrap();
    "added"
}

async fn token(session: Session) -> String {
    session
        .get::<String>("db.causal")
        .await
        .unwrap()
        .unwrap_or_default()
}

fn app(router: DbRouter<Sqlite>, with_session: bool) -> Router {
    let app = Router::new()
        .route("/notes", get(count).post(add))
        .route("/token", get(token))
        .layer(RouterLayer::new(router).with_carrier(SessionCarrier::new()));
    if with_session {
        app.layer(SessionLayer::new(MemoryStore::default()).with_secure(false))
    } else {
        app
    }
}

async fn call(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> (String, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    (String::from_utf8(body.to_vec()).unwrap(), set_cookie)
}

#[tokio::test]
async fn the_token_in_the_session_gives_read_your_writes() {
    let files = Files::new("ryw");
    let router = router(&files).await;
    let app = app(router.clone(), true);

    // A visitor without a token reads from the replica.
    assert_eq!(call(&app, "GET", "/notes", None).await.0, "0");
    assert_eq!(router.stats().replicas[0].reads, 1);

    let (_, cookie) = call(&app, "POST", "/notes", None).await;
    assert!(
        cookie.starts_with("id="),
        "the write saved the session: {cookie:?}"
    );
    let (token, _) = call(&app, "GET", "/token", Some(&cookie)).await;
    assert!(token.starts_with("v1."), "token in the session: {token:?}");
    assert!(token.parse::<db_router::CausalToken>().is_ok());

    // The writer sees its write (the primary serves it) ...
    assert_eq!(call(&app, "GET", "/notes", Some(&cookie)).await.0, "1");
    // ... while a reader without the token still gets the stale replica.
    assert_eq!(call(&app, "GET", "/notes", None).await.0, "0");
    let stats = router.stats();
    assert_eq!(stats.replicas[0].reads, 2);
    assert!(stats.primary_reads >= 1, "{stats:?}");
}

#[tokio::test]
async fn without_a_session_layer_reads_use_the_primary() {
    let files = Files::new("missing");
    let router = router(&files).await;
    let app = app(router.clone(), false);
    assert_eq!(call(&app, "POST", "/notes", None).await.0, "added");
    // Whether the user wrote is unknown: the primary answers.
    assert_eq!(call(&app, "GET", "/notes", None).await.0, "1");
    assert_eq!(
        router
            .stats()
            .fallbacks
            .get(FallbackReason::TokenUnavailable),
        1
    );
}
