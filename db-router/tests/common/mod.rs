//! What the tests against MariaDB and PostgreSQL share: a small app on
//! the `db_router_items` table that writes on POST and reads on GET through
//! the router's [`RouterLayer`](db_router::RouterLayer).

use std::convert::Infallible;

use db_router::{DbHandle, RoutedDatabase};
use http::{Request, Response};
use sqlx::Pool;
use sqlx::pool::PoolConnection;

/// The `db_router_items` table in one database's dialect.
pub(crate) trait ItemsTable: RoutedDatabase {
    /// Inserts one item tagged `tag`.
    fn insert(pool: &Pool<Self>, tag: &str) -> impl Future<Output = ()>;

    /// What `GET /?tag` answers, read on `conn`.
    fn answer(conn: &mut PoolConnection<Self>, tag: &str) -> impl Future<Output = String>;
}

/// The test app: `POST` inserts the body as a tag and answers `created`;
/// `GET /?tag` answers [`ItemsTable::answer`], read where the router sends
/// the request.
pub(crate) async fn app_handler<DB: ItemsTable>(
    request: Request<String>,
) -> Result<Response<String>, Infallible> {
    let db = request
        .extensions()
        .get::<DbHandle<DB>>()
        .expect("RouterLayer installed")
        .clone();
    if request.method() == http::Method::POST {
        DB::insert(db.write_pool(), request.body()).await;
        return Ok(Response::new("created".to_owned()));
    }
    let tag = request.uri().query().unwrap_or_default().to_owned();
    let mut conn = db.reader().await.unwrap();
    Ok(Response::new(DB::answer(&mut conn, &tag).await))
}

/// Checks that one read carrying a token waited for the replica, and that
/// the replica then served it.
pub(crate) fn assert_waited_once_and_served(stats: &db_router::Stats) {
    assert_eq!(
        (stats.token_waits, stats.token_wait_hits),
        (1, 1),
        "{stats:?}"
    );
}
