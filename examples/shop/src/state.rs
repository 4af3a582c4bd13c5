//! What the handlers share: the product caches, the log-in limiter, and
//! whether the session store keeps a per-user index.

use std::sync::Arc;

use db_router::DbRouter;
use session_core::SessionLayer;

use crate::caches::{self, ListingCache, ProductCache, Tiers};
use crate::db::Repo;
use crate::security::LoginLimiter;

/// Shared state of the handlers for the database `DB`.
#[derive(Debug)]
pub struct Shop<DB: Repo> {
    pub(crate) products: ProductCache<DB>,
    pub(crate) listing: ListingCache<DB>,
    pub(crate) limiter: LoginLimiter,
    /// Whether the session store lists and signs out a user's sessions
    /// (every server-side store; not the cookie store).
    pub(crate) user_sessions: bool,
}

/// The handlers' state: the shop behind an `Arc`.
pub type AppState<DB> = Arc<Shop<DB>>;

impl<DB: Repo> Shop<DB> {
    /// The state over `router`, with caches in `tiers`, for requests
    /// served through `sessions`.
    pub fn new(router: &DbRouter<DB>, tiers: &Tiers, sessions: &SessionLayer) -> AppState<DB> {
        let (products, listing) = caches::caches(router, tiers);
        Arc::new(Shop {
            products,
            listing,
            limiter: LoginLimiter::default(),
            user_sessions: sessions.supports_user_sessions(),
        })
    }
}
