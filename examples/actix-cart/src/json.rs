//! `ApiJson`: a JSON body, accepted and refused exactly as the axum shop
//! does.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt as _;
use http_body_util::{Full, Limited};
use serde::de::DeserializeOwned;

use crate::error::plain;

/// A JSON request body of type `T`.
///
/// The body is read up to [`shop::MAX_BODY`] bytes and then handed, under
/// the shop's limit, to axum's `Json` extractor, the one the shop uses, so
/// that a body too large, a missing `Content-Type`, malformed JSON or a
/// wrong field gets the very status and message the shop gives (`413`,
/// `415`, `400`, `422`). A body declared too large never gets here:
/// [`refuse_oversized`](crate::refuse_oversized) answers it first, as the
/// shop does.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// The body, cut off one byte over [`shop::MAX_BODY`]: what is over is
/// refused unread.
async fn read_limited(payload: &mut Payload) -> Result<Vec<u8>, actix_web::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() > shop::MAX_BODY {
            bytes.truncate(shop::MAX_BODY + 1);
            break;
        }
    }
    Ok(bytes)
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let mut payload = payload.take();
        Box::pin(async move {
            let bytes = read_limited(&mut payload).await?;
            let body = Limited::new(Full::new(axum::body::Bytes::from(bytes)), shop::MAX_BODY);
            let mut request = axum::http::Request::new(axum::body::Body::new(body));
            if let Some(value) = content_type
                && let Ok(value) = axum::http::HeaderValue::from_bytes(value.as_bytes())
            {
                request
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_TYPE, value);
            }
            match <axum::Json<T> as axum::extract::FromRequest<()>>::from_request(request, &())
                .await
            {
                Ok(axum::Json(value)) => Ok(ApiJson(value)),
                Err(rejection) => {
                    let status = StatusCode::from_u16(rejection.status().as_u16())
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    let res = plain(status, rejection.body_text());
                    Err(actix_web::error::InternalError::from_response("body refused", res).into())
                }
            }
        })
    }
}
