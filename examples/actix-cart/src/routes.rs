//! The cart API's handlers: each reads the request, calls the shop's
//! action, and answers as the shop does.

use actix_web::http::header::{ALLOW, ContentType};
use actix_web::{HttpResponse, web};
use session_core::Session;
use shop::{AddItem, Repo, Shop};

use crate::error::ApiError;
use crate::json::ApiJson;

type ApiResult = Result<HttpResponse, ApiError>;

/// `GET /api/cart`.
pub(crate) async fn cart(session: Session) -> ApiResult {
    let cart = shop::load_cart(&session).await?;
    Ok(HttpResponse::Ok().json(cart.to_json()))
}

/// `POST /api/cart/items` `{"sku": "…", "qty": N}`: the updated cart.
pub(crate) async fn add<DB: Repo>(
    shop: web::Data<Shop<DB>>,
    session: Session,
    ApiJson(item): ApiJson<AddItem>,
) -> ApiResult {
    let cart = shop::add_to_cart(&shop, &session, &item.sku, item.qty).await?;
    Ok(HttpResponse::Ok().json(cart.to_json()))
}

/// `DELETE /api/cart/items/{sku}`: the updated cart.
pub(crate) async fn remove(session: Session, sku: web::Path<String>) -> ApiResult {
    let cart = shop::remove_from_cart(&session, &sku).await?;
    Ok(HttpResponse::Ok().json(cart.to_json()))
}

/// `GET /api/products/{sku}`: through the cache, then the router.
pub(crate) async fn product<DB: Repo>(
    shop: web::Data<Shop<DB>>,
    sku: web::Path<String>,
) -> ApiResult {
    let product = shop::product(&shop, &sku).await?;
    Ok(HttpResponse::Ok().json(product))
}

/// `GET /healthz`, for load balancers.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Any other path or method: the shop's "not found" page.
pub(crate) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type(ContentType::html())
        .body(shop::not_found_page())
}

/// Another method of a path that `allow`'s methods serve: `405` with
/// `Allow`, and no body, as the shop's router answers.
pub(crate) fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        HttpResponse::MethodNotAllowed()
            .insert_header((ALLOW, allow))
            .finish()
    })
}
