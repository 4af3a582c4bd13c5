//! What the handlers share: the product caches and the log-in limiter.

use std::sync::Arc;

use db_router::DbRouter;

use crate::caches::{self, ListingCache, ProductCache, Tiers};
use crate::db::Repo;
use crate::security::LoginLimiter;

/// Shared state of the handlers for the database `DB`.
#[derive(Debug)]
pub struct Shop<DB: Repo> {
    pub(crate) products: ProductCache<DB>,
    pub(crate) listing: ListingCache<DB>,
    pub(crate) limiter: LoginLimiter,
}

/// The handlers' state: the shop behind an `Arc`.
pub type AppState<DB> = Arc<Shop<DB>>;

impl<DB: Repo> Shop<DB> {
    /// The state over `router`, with caches in `tiers`.
    pub fn new(router: &DbRouter<DB>, tiers: &Tiers) -> AppState<DB> {
        let (products, listing) = caches::caches(router, tiers);
        Arc::new(Shop {
            products,
            listing,
            limiter: LoginLimiter::default(),
        })
    }
}
