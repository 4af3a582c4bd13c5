//! HTTP request metrics by route (the matched path pattern, never the raw
//! URI) and status: `http_server_requests_total` and
//! `http_server_request_duration_seconds`.
//!
//! Two middlewares: [`mark_route`] runs after routing (a route layer) and
//! leaves the matched path in the response; [`count`] wraps everything and
//! records the final status, so that answers of the outer layers (a `503`
//! from the session layer, a `413`) are counted too.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Requests, by `method`, `route` and `status`.
const REQUESTS: &str = "http_server_requests_total";
/// Request latency, by `method` and `route`.
const REQUEST_SECONDS: &str = "http_server_request_duration_seconds";

/// The matched path of a request, carried out in its response.
#[derive(Clone)]
struct Route(MatchedPath);

/// Route layer: notes the matched path in the response.
pub(crate) async fn mark_route(path: MatchedPath, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.extensions_mut().insert(Route(path));
    response
}

/// The method as a label: the standard ones by name, anything else as
/// `other`, so that clients cannot grow the label set.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Outer layer: counts and times the request by method, route and status.
pub(crate) async fn count(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.as_str().to_owned());
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        REQUEST_SECONDS,
        "method" => method,
        "route" => route.clone(),
    )
    .record(started.elapsed());
    metrics::counter!(
        REQUESTS,
        "method" => method,
        "route" => route,
        "status" => status,
    )
    .increment(1);
    response
}
