//! The actix-web front end: the conformance suite through it, and what it
//! answers to bad cookies, a store that is down and a missing middleware.
#![cfg(all(feature = "actix", feature = "test-suite"))]

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, HttpResponse, web};
use session_core::test_suite::{self, FrontEnd};
use session_core::{Session, SessionLayer};
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
async fn bad_cookies_start_a_fresh_session() {
    let app = init_service(
        App::new()
            .wrap(SessionLayer::new(MemoryStore::default()))
            .route("/", web::post().to(count)),
    )
    .await;
    let long = format!("id={}", "A".repeat(8000));
    let mut tampered = {
        let res = call_service(&app, TestRequest::post().to_request()).await;
        let set = res
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        set.split(';').next().unwrap().to_owned()
    };
    // One character of a valid ID changed.
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        "id=garbage",
        "id=",
        "id=%00%01",
        "id=\"unterminated",
        "id=a; id=b; id=c",
        "=; ;;",
        long.as_str(),
        tampered.as_str(),
    ] {
        let req = TestRequest::post()
            .insert_header(("cookie", bad))
            .to_request();
        let res = call_service(&app, req).await;
        assert_eq!(res.status(), 200, "{bad:?}");
        assert!(res.headers().contains_key("set-cookie"), "{bad:?}");
        assert_eq!(read_body(res).await, "1", "{bad:?} did not start fresh");
    }
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
