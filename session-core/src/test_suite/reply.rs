//! What a `TestApp` runs and answers, whatever its front end: the
//! handler, and the reply.

use std::future::Future;
use std::sync::Arc;

use http::StatusCode;

use crate::{Result, Session};

/// A `TestApp`'s handler: the request's session and index in, the body
/// out.
pub(super) type Handler = Arc<
    dyn Fn(Session, usize) -> std::pin::Pin<Box<dyn Future<Output = Result<String>> + Send>>
        + Send
        + Sync,
>;

/// A response from a [`TestApp`](super::TestApp).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestReply {
    /// The status: a handler's error gives [`Error::status`](crate::Error::status).
    pub status: StatusCode,
    /// The handler's output, or the error message.
    pub body: String,
    /// The raw `Set-Cookie` header.
    pub set_cookie: Option<String>,
    /// `name=value` from it, as a client would send it back.
    pub cookie: Option<String>,
}

impl TestReply {
    pub(super) fn new(status: StatusCode, body: String, set_cookie: Option<String>) -> Self {
        TestReply {
            status,
            cookie: set_cookie
                .as_deref()
                .and_then(|h| h.split(';').next())
                .map(str::to_owned),
            set_cookie,
            body,
        }
    }
}
