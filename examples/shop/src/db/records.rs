//! The rows the shop reads and writes, beyond the products.

use serde::Serialize;

/// A user as stored, with the password hash.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// The user's ID.
    pub id: i64,
    /// Log-in e-mail, lower case.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// What the profile page shows and saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Log-in e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Delivery addresses, first is the default.
    pub addresses: Vec<String>,
}

/// One line of an order, with the price paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The product.
    pub sku: String,
    /// Its name at the time of the order.
    pub name: String,
    /// How many.
    pub qty: i64,
    /// Unit price in cents.
    pub price_cents: i64,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// The order number.
    pub id: i64,
    /// Sum of the lines, in cents.
    pub total_cents: i64,
    /// Delivery address.
    pub ship_to: String,
    /// When it was placed (Unix time in ms).
    pub created_at_ms: i64,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
}

/// An order in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSummary {
    /// The order number.
    pub id: i64,
    /// Total in cents.
    pub total_cents: i64,
    /// When it was placed (Unix time in ms).
    pub created_at_ms: i64,
}
