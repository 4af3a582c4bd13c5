//! The products on sale, and the seed catalog a new database starts with.

use serde::{Deserialize, Serialize};

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
