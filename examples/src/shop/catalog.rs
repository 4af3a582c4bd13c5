//! The products on sale, and the caches in front of them.

use std::fmt;

use cache_aside::{Cache, Loader};
use db_router::DbRouter;
use serde::{Deserialize, Serialize};

use super::db::Repo;

/// A product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stock-keeping unit, the product's ID.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price in cents.
    pub price_cents: i64,
    /// A sentence about it.
    pub description: String,
}

/// Products per page of the product list.
pub const PAGE_SIZE: u32 = 40;

/// Longest SKU looked up; longer ones are unknown without a query.
pub const MAX_SKU_LEN: usize = 32;

/// The seed catalog, inserted by the second migration: a few hundred
/// products, so load tests and concurrent tests have distinct SKUs to add.
pub fn seed_products() -> Vec<Product> {
    const KINDS: [(&str, i64, &str); 8] = [
        ("Mug", 1200, "A stoneware mug that keeps coffee warm."),
        ("T-shirt", 2500, "Organic cotton, printed with the logo."),
        ("Notebook", 800, "Dotted pages, lies flat."),
        ("Sticker pack", 400, "Six vinyl stickers for your laptop."),
        ("Hoodie", 5500, "Heavy fleece with a front pocket."),
        ("Cap", 1800, "Embroidered, adjustable strap."),
        ("Tote bag", 1500, "Canvas bag for the market."),
        ("Poster", 1000, "A2 print on matte paper."),
    ];
    (0..400)
        .map(|i| {
            let (kind, base, description) = KINDS[i % KINDS.len()];
            Product {
                sku: format!("SKU-{i:04}"),
                name: format!("{kind} #{}", i / KINDS.len() + 1),
                price_cents: base + (i as i64 % 7) * 50,
                description: description.to_owned(),
            }
        })
        .collect()
}

/// The SQL of the seed migration: one multi-row `INSERT` that every
/// supported database accepts.
pub(crate) fn seed_sql() -> String {
    let rows: Vec<String> = seed_products()
        .iter()
        .map(|p| {
            // Generated text: no quotes to escape.
            format!(
                "('{}', '{}', {}, '{}')",
                p.sku, p.name, p.price_cents, p.description
            )
        })
        .collect();
    format!(
        "INSERT INTO products (sku, name, price_cents, description) VALUES\n{};\n",
        rows.join(",\n")
    )
}

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
        let mut conn = self.router.reader().await?;
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
        let mut conn = self.router.reader().await?;
        Ok(Some(DB::products(&mut *conn, offset, limit).await?))
    }
}

/// Products by SKU, cached.
pub type ProductCache<DB> = Cache<String, Product, ProductLoader<DB>>;
/// Pages of the product list, cached.
pub type ListingCache<DB> = Cache<Listing, Vec<Product>, ListingLoader<DB>>;

/// Where the caches keep their entries.
#[derive(Debug, Clone)]
pub(crate) enum Tiers {
    /// No tier: loads are only coalesced.
    None,
    /// In process (moka).
    Local,
    /// In process, then Redis.
    Redis(Box<redis::Client>),
}

/// The two caches of the shop over `router`.
pub(crate) fn caches<DB: Repo>(
    router: &DbRouter<DB>,
    tiers: &Tiers,
) -> (ProductCache<DB>, ListingCache<DB>) {
    use cache_aside::CacheBuilder;
    use std::time::Duration;

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
