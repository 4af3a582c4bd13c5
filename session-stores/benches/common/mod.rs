//! What the session-stores benches share: criterion's settings and the
//! session they measure, a 20-item cart.

use std::time::Duration;

use criterion::Criterion;
use serde::{Deserialize, Serialize};
use serde_json::json;
use session_core::Id;
use session_core::store::{Data, Record, Value, now};

/// Criterion with the benches' settings, after the command line's.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

/// One line of the cart.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Item {
    sku: String,
    name: String,
    qty: u32,
    price_cents: u64,
    tags: Vec<String>,
}

/// A cart of 20 items.
pub(crate) fn cart() -> Vec<Item> {
    (0..20)
        .map(|i| Item {
            sku: format!("SKU-{i:06}"),
            name: format!("Product number {i} of the spring catalogue"),
            qty: i % 4 + 1,
            price_cents: 1999 + u64::from(i) * 100,
            tags: vec!["sale".into(), "new".into()],
        })
        .collect()
}

/// A session holding a 20-item cart, about 2 KB encoded.
pub(crate) fn cart_record() -> Record {
    let mut data = Data::new();
    data.insert("cart".into(), Value::new(&cart()).expect("cart"));
    data.insert("user".into(), json!({"id": 42, "name": "Alice"}).into());
    let now = now();
    Record::new(
        Id::random(),
        data,
        now,
        Some(now + Duration::from_secs(3600)),
    )
}
