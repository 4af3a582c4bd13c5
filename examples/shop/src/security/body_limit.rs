//! The limit on request bodies, and the 413 for a body declared too large:
//! the decision and the drain in [`oversized`] and [`Oversized::drain`],
//! which any front end calls, and the shop's middleware over them.

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::SemaphorePermit;

/// Largest request body the shop accepts.
pub const MAX_BODY: usize = 16 * 1024;

/// The body of the shop's `413` to a body declared larger than
/// [`MAX_BODY`] (`Content-Type: text/plain; charset=utf-8`).
pub const TOO_LARGE: &str = "request body too large";

/// Bodies up to this size that declare more than [`MAX_BODY`] are read
/// and thrown away before the 413 goes out.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// How long the shop keeps reading an oversized body it drains.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many oversized bodies are drained at once; beyond that the
/// 413 goes out at once.
static DRAINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

/// A request body the shop refuses with `413` [`TOO_LARGE`], from
/// [`oversized`]; [`drain`](Self::drain) it before answering.
#[derive(Debug)]
#[must_use = "drain the body, then answer 413"]
pub struct Oversized {
    /// Held while this body is drained; `None` when it is not drained.
    permit: Option<SemaphorePermit<'static>>,
}

/// Whether a request whose `Content-Length` header is `content_length` is
/// refused for its size, and if so how: `None` lets it through.
///
/// A server that answers early and closes with the body still unread
/// makes its kernel send a reset, and a client still writing then often
/// loses the answer and sees a broken connection instead of the 413.
/// Reading a bounded body first lets the answer arrive; anything larger
/// than 1 MiB, slower than 5 s, sent with `Expect: 100-continue`
/// (`expects_continue`: the client has sent nothing yet, and reading
/// would invite the upload only to refuse it), or beyond 64 concurrent
/// drains is cut off. Bodies without a length must be limited to
/// [`MAX_BODY`] while they are read.
pub fn oversized(content_length: Option<&[u8]>, expects_continue: bool) -> Option<Oversized> {
    let declared = content_length
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse::<u64>().ok())?;
    if declared <= MAX_BODY as u64 {
        return None;
    }
    let permit = if declared <= DRAIN_LIMIT && !expects_continue {
        DRAINS.try_acquire().ok()
    } else {
        None
    };
    Some(Oversized { permit })
}

impl Oversized {
    /// Runs `read_to_end` (which reads the body and throws it away) for at
    /// most 5 s when this body is to be drained; otherwise does nothing.
    pub async fn drain(self, read_to_end: impl Future<Output = ()>) {
        if self.permit.is_some() {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, read_to_end).await;
        }
    }
}

/// The shop's middleware over [`oversized`]: a `413` [`TOO_LARGE`] to a
/// body whose `Content-Length` is over [`MAX_BODY`], after draining it.
/// Bodies without a length are limited while they are read
/// (`RequestBodyLimitLayer`).
pub(crate) async fn refuse_oversized(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let refused = oversized(
        headers.get(header::CONTENT_LENGTH).map(|v| v.as_bytes()),
        headers.contains_key(header::EXPECT),
    );
    match refused {
        Some(refused) => {
            let mut body = request.into_body();
            refused
                .drain(async { while let Some(Ok(_)) = body.frame().await {} })
                .await;
            (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE).into_response()
        }
        None => next.run(request).await,
    }
}
