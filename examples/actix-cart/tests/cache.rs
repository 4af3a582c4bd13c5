//! actix-cart reads products through the shop's cache-aside cache: with
//! `CACHE=local` a product read twice costs the database one read, without
//! a cache two.

use actix_cart::{Connected, app, connect};
use actix_web::test::{TestRequest, call_service, init_service};
use shop::{CacheKind, Config};

/// The database reads that two reads of one product through actix-cart
/// cost with `cache`.
async fn database_reads_for_two_product_reads(cache: CacheKind) -> u64 {
    let mut config = Config::default();
    config.database_url = Some("sqlite::memory:".into());
    config.cache = cache;
    let Connected::Sqlite(parts) = connect(&config).await.expect("actix-cart connects") else {
        unreachable!("the test uses SQLite")
    };
    let router = parts.router.clone();
    let app = init_service(app(parts)).await;
    let reads = || {
        let stats = router.stats();
        stats.primary_reads + stats.replica_reads
    };
    let before = reads();
    for _ in 0..2 {
        let req = TestRequest::get()
            .uri("/api/products/SKU-0003")
            .to_request();
        assert_eq!(call_service(&app, req).await.status(), 200);
    }
    reads() - before
}

#[actix_web::test]
async fn products_are_read_through_the_shops_cache() {
    let uncached = database_reads_for_two_product_reads(CacheKind::None).await;
    let cached = database_reads_for_two_product_reads(CacheKind::Local).await;
    assert!(cached > 0, "the first read loads from the database");
    assert_eq!(
        uncached,
        2 * cached,
        "the second read comes from the cache ({cached} database reads cached, {uncached} without)"
    );
}
