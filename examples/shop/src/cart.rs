//! The cart kept in the session.

use serde::{Deserialize, Serialize};

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// The product's SKU.
    pub sku: String,
    /// How many.
    pub qty: u32,
}

/// The cart: one line per SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// The lines, in the order they were first added.
    pub items: Vec<CartLine>,
}

/// The session key the cart is kept under.
pub const CART_KEY: &str = "cart";

/// Most of one SKU a cart may hold.
pub const MAX_QTY: u32 = 99;

impl Cart {
    /// Adds `qty` of `sku`: to its line if there is one (capped at
    /// [`MAX_QTY`]), else as a new line.
    pub fn add(&mut self, sku: &str, qty: u32) {
        match self.items.iter_mut().find(|l| l.sku == sku) {
            Some(line) => line.qty = line.qty.saturating_add(qty).min(MAX_QTY),
            None => self.items.push(CartLine {
                sku: sku.to_owned(),
                qty: qty.min(MAX_QTY),
            }),
        }
    }

    /// Removes the line of `sku`, if any.
    pub fn remove(&mut self, sku: &str) {
        self.items.retain(|l| l.sku != sku);
    }

    /// Takes `qty` of `sku` out (after an order), dropping the line when
    /// none is left.
    pub fn take(&mut self, sku: &str, qty: u32) {
        for line in self.items.iter_mut().filter(|l| l.sku == sku) {
            line.qty = line.qty.saturating_sub(qty);
        }
        self.items.retain(|l| l.qty > 0);
    }

    /// Number of items (sum of quantities).
    pub fn count(&self) -> u32 {
        self.items.iter().map(|l| l.qty).sum()
    }

    /// The cart as the JSON API answers it: `{"items": [...], "count": N}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "items": self.items, "count": self.count() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_merges_lines_and_caps_quantity() {
        let mut cart = Cart::default();
        cart.add("A", 1);
        cart.add("B", 2);
        cart.add("A", 3);
        assert_eq!(cart.items.len(), 2);
        assert_eq!(
            cart.items[0],
            CartLine {
                sku: "A".into(),
                qty: 4
            }
        );
        cart.add("A", 500);
        assert_eq!(cart.items[0].qty, MAX_QTY);
        cart.remove("A");
        assert_eq!(cart.count(), 2);
    }
}
