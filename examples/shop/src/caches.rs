//! The caches in front of the products: by SKU and by page of the list,
//! in the tiers the [`Config`] names.

use std::fmt;
use std::time::Duration;

use cache_aside::{Cache, CacheBuilder, Loader};
use db_router::DbRouter;
use serde::{Deserialize, Serialize};

use crate::catalog::{PAGE_SIZE, Product};
use crate::config::{CacheKind, Config};
use crate::db::Repo;
use crate::error::StartError;
use crate::footer;

/// A key of the product-list cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Listing {
    /// Every product.
    All,
    /// One page of [`PAGE_SIZE`] products, from 0.
    Page(u32),
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listing::All => f.write_str("all"),
            Listing::Page(n) => write!(f, "page-{n}"),
        }
    }
}

/// Loads products by SKU from a replica (or the primary) through the
/// router.
#[derive(Debug)]
pub struct ProductLoader<DB: Repo> {
    router: DbRouter<DB>,
}

/// Loads pages of the product list through the router.
#[derive(Debug)]
pub struct ListingLoader<DB: Repo> {
    router: DbRouter<DB>,
}

impl<DB: Repo> Loader<String, Product> for ProductLoader<DB> {
    type Error = db_router::Error;

    async fn load(&self, sku: &String) -> Result<Option<Product>, Self::Error> {
        let (mut conn, source) = self.router.reader_with_source(None).await?;
        footer::read_from(source);
        Ok(DB::product(&mut *conn, sku).await?)
    }
}

impl<DB: Repo> Loader<Listing, Vec<Product>> for ListingLoader<DB> {
    type Error = db_router::Error;

    async fn load(&self, listing: &Listing) -> Result<Option<Vec<Product>>, Self::Error> {
        let (offset, limit) = match *listing {
            Listing::All => (0, i64::MAX),
            Listing::Page(n) => (i64::from(n) * i64::from(PAGE_SIZE), i64::from(PAGE_SIZE)),
        };
        let (mut conn, source) = self.router.reader_with_source(None).await?;
        footer::read_from(source);
        Ok(Some(DB::products(&mut *conn, offset, limit).await?))
    }
}

/// Products by SKU, cached.
pub type ProductCache<DB> = Cache<String, Product, ProductLoader<DB>>;
/// Pages of the product list, cached.
pub type ListingCache<DB> = Cache<Listing, Vec<Product>, ListingLoader<DB>>;

/// Where the caches keep their entries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Tiers {
    /// No tier: loads are only coalesced.
    None,
    /// In process (moka).
    Local,
    /// In process, then Redis.
    Redis(Box<redis::Client>),
}

/// The tiers `config` names, checking that Redis answers when it is one.
///
/// # Errors
///
/// Redis cannot be reached, naming `REDIS_URL`.
pub async fn tiers(config: &Config) -> Result<Tiers, StartError> {
    Ok(match config.cache {
        CacheKind::None => Tiers::None,
        CacheKind::Local => Tiers::Local,
        CacheKind::Redis => {
            let url = config.redis_url.as_deref().unwrap_or_default();
            let bad = |e: String| StartError::new("REDIS_URL", e);
            let client = redis::Client::open(url).map_err(|e| bad(e.to_string()))?;
            let ping = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(Duration::from_secs(5), ping).await {
                Ok(Ok(_)) => Tiers::Redis(Box::new(client)),
                Ok(Err(e)) => return Err(bad(format!("cannot reach Redis: {e}"))),
                Err(_) => return Err(bad("Redis did not answer within 5 s".to_owned())),
            }
        }
    })
}

/// The two caches of the shop over `router`.
pub(crate) fn caches<DB: Repo>(
    router: &DbRouter<DB>,
    tiers: &Tiers,
) -> (ProductCache<DB>, ListingCache<DB>) {
    let products = CacheBuilder::new("shop:products:v1").with_ttl(Duration::from_secs(300));
    let listing = CacheBuilder::new("shop:listing:v1").with_ttl(Duration::from_secs(60));
    let (products, listing) = match tiers {
        Tiers::None => (products, listing),
        Tiers::Local => (products.with_l1(10_000), listing.with_l1(100)),
        Tiers::Redis(client) => (
            products.with_l1(10_000).with_redis((**client).clone()),
            listing.with_l1(100).with_redis((**client).clone()),
        ),
    };
    (
        products.build(ProductLoader {
            router: router.clone(),
        }),
        listing.build(ListingLoader {
            router: router.clone(),
        }),
    )
}
