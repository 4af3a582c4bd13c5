//! The shop's page footer around each request, so that the pages
//! actix-cart renders (its "not found") carry it as the shop's do.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use shop::Footer;

/// Runs the request through [`Footer::serve`] when the footer is on
/// (`footer` is `Some`), as the shop's router does.
pub(crate) async fn with_footer<B: MessageBody>(
    footer: Option<Arc<Footer>>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    match footer {
        Some(footer) => footer.serve(next.call(req)).await,
        None => next.call(req).await,
    }
}
