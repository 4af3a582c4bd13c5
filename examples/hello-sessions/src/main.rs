//! Run with: `cargo run -p hello-sessions`, then open
//! <http://127.0.0.1:3000> and reload. The smallest axum app with sessions:
//! kept in this process, one cookie per visitor, and a handler that counts
//! that visitor's visits.

use axum::{Router, routing::get};
use session_core::{Session, SessionLayer};
use session_stores::MemoryStore;

/// Counts the visitor's visits; requests at the same time all count.
async fn count(session: Session) -> Result<String, session_core::Error> {
    let visits: u64 = session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(format!("visits: {visits}"))
}

/// The app: one route behind the session layer.
fn app() -> Router {
    Router::new()
        .route("/", get(count))
        .layer(SessionLayer::new(MemoryStore::default()))
}

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000")
        .await
        .unwrap();
    axum::serve(listener, app()).await.unwrap();
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn the_count_is_kept_in_the_session() {
        let app = super::app();
        let first = app
            .clone()
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap();
        let set_cookie = first.headers()[header::SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert_eq!(to_bytes(first.into_body(), 64).await.unwrap(), "visits: 1");

        let again = Request::builder().header(header::COOKIE, cookie);
        let second = app
            .oneshot(again.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(to_bytes(second.into_body(), 64).await.unwrap(), "visits: 2");
    }
}
