//! The limit on request bodies, and the 413 for a body declared too large.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// Largest request body the shop accepts.
pub const MAX_BODY: usize = 16 * 1024;

/// Bodies up to this size that declare more than [`MAX_BODY`] are read
/// and thrown away before the 413 goes out.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// How long the shop keeps reading an oversized body it drains.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many oversized bodies are drained at once; beyond that the
/// 413 goes out at once.
static DRAINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

/// Answers 413 to a body whose `Content-Length` is over
/// [`MAX_BODY`], after reading it when it is no larger
/// than [`DRAIN_LIMIT`].
///
/// A server that answers early and closes with the body still unread
/// makes its kernel send a reset, and a client still writing then often
/// loses the answer and sees a broken connection instead of the 413.
/// Reading a bounded body first lets the answer arrive; anything larger,
/// slower than [`DRAIN_TIMEOUT`], sent with `Expect: 100-continue`, or
/// beyond [`DRAINS`] concurrent drains is cut off. Bodies without a length
/// are limited while they are read (`RequestBodyLimitLayer`).
pub(crate) async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY as u64 => {
            // A client that waits for `100 Continue` has sent nothing yet:
            // reading would invite the upload only to refuse it.
            let expects_continue = request.headers().contains_key(header::EXPECT);
            let permit = DRAINS.try_acquire();
            if length <= DRAIN_LIMIT && !expects_continue && permit.is_ok() {
                let mut body = request.into_body();
                let drain = async { while let Some(Ok(_)) = body.frame().await {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
            }
            (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
        _ => next.run(request).await,
    }
}
