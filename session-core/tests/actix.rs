//! The actix-web front end: the conformance suite through it (bad cookies
//! included), and what it answers when the store is down and when the
//! middleware is missing.
#![cfg(all(feature = "actix", feature = "test-suite"))]

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, HttpResponse, web};
use session_core::Session;
use session_core::test_suite::{self, FrontEnd};
use session_stores::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_through_actix_with_the_memory_store() {
    let store = MemoryStore::default();
    test_suite::run_through(FrontEnd::Actix, || {
        let store = store.clone();
        async move { store }
    })
    .await
    .assert_passed();
}

async fn count(session: Session) -> Result<HttpResponse, session_core::Error> {
    let n = session
        .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
        .await?;
    Ok(HttpResponse::Ok().body(n.to_string()))
}

#[actix_web::test]
async fn a_route_without_the_middleware_names_it() {
    let app = init_service(App::new().route("/", web::post().to(count))).await;
    let res = call_service(&app, TestRequest::post().to_request()).await;
    assert_eq!(res.status(), 500);
    let body = read_body(res).await;
    let body = std::str::from_utf8(&body).unwrap();
    assert!(body.contains("SessionLayer"), "{body}");
}

#[actix_web::test]
async fn the_error_is_a_response_with_retry_after() {
    use actix_web::ResponseError as _;
    let e = session_core::Error::backend("down");
    let res = e.error_response();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    let e = session_core::Error::Conflict { attempts: 3 };
    assert_eq!(e.error_response().status(), 409);
    assert!(!e.error_response().headers().contains_key("retry-after"));
}
