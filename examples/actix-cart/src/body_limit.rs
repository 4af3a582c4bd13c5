//! `refuse_oversized`: the shop's `413` to a body declared too large,
//! drained first as the shop drains it.

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, EXPECT};
use actix_web::middleware::Next;
use futures_util::StreamExt as _;

use crate::error::plain;

/// Middleware (through `actix_web::middleware::from_fn`) answering `413`
/// [`shop::TOO_LARGE`] to a request whose `Content-Length` is over
/// [`shop::MAX_BODY`], on any path, after reading the body when the shop
/// would ([`shop::oversized`] decides, [`shop::Oversized::drain`] bounds
/// the read). Bodies without a length are limited while they are read
/// ([`ApiJson`](crate::ApiJson)).
///
/// # Errors
///
/// What the inner service failed with.
pub async fn refuse_oversized<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let headers = req.headers();
    let refused = shop::oversized(
        headers.get(CONTENT_LENGTH).map(|v| v.as_bytes()),
        headers.contains_key(EXPECT),
    );
    let Some(refused) = refused else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let mut payload = req.take_payload();
    refused
        .drain(async { while let Some(Ok(_)) = payload.next().await {} })
        .await;
    let res = plain(StatusCode::PAYLOAD_TOO_LARGE, shop::TOO_LARGE);
    Ok(req.into_response(res).map_into_right_body())
}
