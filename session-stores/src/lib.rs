//! Session stores for [`session-core`](session_core).
//!
//! Each store keeps versioned session records for the
//! [`SessionLayer`](session_core::SessionLayer) and passes session-core's
//! conformance suite, compare-and-set saves included, so concurrent
//! requests of one user never lose each other's changes.
//!
//! | store | where the state lives | survives round-robin over instances | survives losing an instance |
//! |-------|-----------------------|-------------------------------------|-----------------------------|
//! | [`MemoryStore`] | this process (moka) | no: one instance, or sticky sessions | no |
//!
//! # Example
//!
//! ```
//! use session_core::{Session, SessionLayer};
//! use session_stores::MemoryStore;
//!
//! let store = MemoryStore::builder().with_max_sessions(100_000).build();
//! let layer = SessionLayer::new(store);
//! # let _ = layer;
//! ```
//!
//! # Features
//!
//! | feature  | default | store |
//! |----------|---------|-------|
//! | `memory` | yes     | [`MemoryStore`]: in-process, bounded, expiring (moka) |
//! | `full`   | no      | every store |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
mod memory;

#[cfg(feature = "memory")]
pub use memory::{MemoryStore, MemoryStoreBuilder};
