//! The products on sale.

use serde::Serialize;

/// A product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Stock-keeping unit, the product's ID.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price in cents.
    pub price_cents: u32,
}

/// The seed catalog: a few hundred products, so load tests and concurrent
/// tests have distinct SKUs to add.
pub fn seed_products() -> Vec<Product> {
    const KINDS: [(&str, u32); 8] = [
        ("Mug", 1200),
        ("T-shirt", 2500),
        ("Notebook", 800),
        ("Sticker pack", 400),
        ("Hoodie", 5500),
        ("Cap", 1800),
        ("Tote bag", 1500),
        ("Poster", 1000),
    ];
    (0..400)
        .map(|i| {
            let (kind, base) = KINDS[i % KINDS.len()];
            Product {
                sku: format!("SKU-{i:04}"),
                name: format!("{kind} #{}", i / KINDS.len() + 1),
                price_cents: base + (i as u32 % 7) * 50,
            }
        })
        .collect()
}
