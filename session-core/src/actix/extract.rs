//! `Session` as an actix-web extractor.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};

use crate::{MissingSessionLayer, Session};

impl FromRequest for Session {
    type Error = MissingSessionLayer;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Session>()
                .cloned()
                .ok_or(MissingSessionLayer),
        )
    }
}

/// A `500` naming the missing middleware: a route without a session is a
/// wiring mistake of the app, not of the client.
impl ResponseError for MissingSessionLayer {
    fn error_response(&self) -> HttpResponse {
        tracing::error!("{self}");
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}
