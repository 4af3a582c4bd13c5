//! `carry_tokens` in an actix-web app: a write's causal token goes into
//! the user's session, and that user's next reads carry it to the
//! primary, while a reader without it is served by a replica.
//!
//! The "replica" is a second SQLite file that never receives the writes,
//! so that a read it serves is recognisable.

use actix_cart::carry_tokens;
use actix_web::middleware::from_fn;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, HttpResponse, web};
use db_router::{DbHandle, DbRouter};
use shop::Config;
use sqlx::Sqlite;
use sqlx::sqlite::SqlitePool;
use test_support::TempDir;

/// A database file `name` in `dir` with an empty `notes` table.
async fn database(dir: &TempDir, name: &str) -> SqlitePool {
    let url = format!("sqlite://{}?mode=rwc", dir.join(name).display());
    let pool = SqlitePool::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE notes (body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// `GET /notes`: how many notes the database serving the read holds.
async fn count(db: web::ReqData<DbHandle<Sqlite>>) -> HttpResponse {
    let mut conn = db.reader().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    HttpResponse::Ok().body(n.to_string())
}

/// `POST /notes`: one note more, on the primary.
async fn add(db: web::ReqData<DbHandle<Sqlite>>) -> HttpResponse {
    sqlx::query("INSERT INTO notes VALUES ('hello')")
        .execute(db.write_pool())
        .await
        .unwrap();
    HttpResponse::Ok().body("added")
}

#[actix_web::test]
async fn a_write_token_in_the_session_sends_that_users_reads_to_the_primary() {
    let dir = TempDir::new("actix-cart-causal");
    let primary = database(&dir, "primary.db").await;
    let replica = database(&dir, "replica.db").await;
    let router: DbRouter<Sqlite> = DbRouter::builder(primary)
        .with_replica((*replica.connect_options()).clone())
        .build()
        .await
        .unwrap();
    let mut config = Config::default();
    config.secure_cookie = false;
    let sessions = shop::session_layer(&config).await.unwrap();
    let app = init_service(
        App::new()
            .app_data(web::Data::new(router.clone()))
            .route("/notes", web::get().to(count))
            .route("/notes", web::post().to(add))
            .wrap(from_fn(carry_tokens::<Sqlite>))
            .wrap(sessions),
    )
    .await;
    let call = |req: TestRequest, cookie: Option<&str>| {
        let req = match cookie {
            Some(c) => req.insert_header(("cookie", c.to_owned())),
            None => req,
        };
        let app = &app;
        async move {
            let res = call_service(app, req.uri("/notes").to_request()).await;
            assert_eq!(res.status(), 200);
            let cookie = res
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(str::to_owned);
            let body = String::from_utf8(read_body(res).await.to_vec()).unwrap();
            (body, cookie)
        }
    };

    // A visitor without a token reads from the replica.
    assert_eq!(call(TestRequest::get(), None).await.0, "0");
    assert_eq!(router.stats().replicas[0].reads, 1);

    let (_, cookie) = call(TestRequest::post(), None).await;
    let cookie = cookie.expect("the write's token saved in a new session");
    // The writer sees its write: the primary serves the read ...
    assert_eq!(call(TestRequest::get(), Some(&cookie)).await.0, "1");
    // ... while a reader without the token still gets the stale replica.
    assert_eq!(call(TestRequest::get(), None).await.0, "0");
    let stats = router.stats();
    assert_eq!(stats.replicas[0].reads, 2, "{stats:?}");
    assert!(stats.primary_reads >= 1, "{stats:?}");
}
