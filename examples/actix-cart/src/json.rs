//! `ApiJson`: a JSON body, accepted and refused exactly as the axum shop
//! does.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;

/// A JSON request body of type `T`.
///
/// The body is limited to [`shop::MAX_BODY`] bytes (`413 request body too
/// large`, as the shop answers) and then handed to axum's `Json` extractor,
/// the one the shop uses, so that a missing `Content-Type`, malformed JSON
/// or a wrong field gets the very status and message the shop gives
/// (`415`, `400`, `422`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn refuse(status: u16, message: String) -> actix_web::Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let res = HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(message);
    actix_web::error::InternalError::from_response("request body refused", res).into()
}

fn too_large() -> actix_web::Error {
    refuse(413, "request body too large".to_owned())
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let declared = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > shop::MAX_BODY as u64) {
                return Err(too_large());
            }
            let bytes = <web::Bytes as FromRequest>::from_request(&req, &mut payload)
                .await
                .map_err(|e| {
                    if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        e
                    }
                })?;
            if bytes.len() > shop::MAX_BODY {
                return Err(too_large());
            }
            let mut request = axum::http::Request::new(axum::body::Body::from(bytes));
            if let Some(value) = req.headers().get(CONTENT_TYPE)
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
                Err(rejection) => Err(refuse(rejection.status().as_u16(), rejection.body_text())),
            }
        })
    }
}
