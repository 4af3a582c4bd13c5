//! For store implementors: the traits a backend implements and the record
//! it keeps.
//!
//! Handlers never need this module; they use [`Session`](crate::Session),
//! [`SessionLayer`](crate::SessionLayer) and [`Error`](crate::Error) from the
//! crate root, where [`SessionStore`] and [`ClientStore`] are re-exported
//! for naming a store in an app's wiring.
//!
//! A store gets here:
//!
//! - the contracts: [`SessionStore`] (records kept on the server,
//!   compare-and-set saves) and [`ClientStore`] (the session sealed into the
//!   cookie, opened as [`Opened`]);
//! - the data it keeps: a [`Record`] (ID, version, times and [`Data`] of
//!   [`Value`]s) and its compact encoding, [`Record::encode`],
//!   [`Record::decode`] and [`Record::decode_with_metadata`] for backends
//!   that keep the version and expiry beside the bytes;
//! - for the per-user session index (optional): the [`SessionStore`]
//!   methods `load_user_index`, `save_user_index` and `delete_user_index`,
//!   which keep one [`UserIndex`] per user under [`user_key`], and the
//!   [`Binding`] a bound session's record carries;
//! - the clock stored times follow: [`now`], to the millisecond, and
//!   [`unix_millis`] / [`from_unix_millis`] for backends that store
//!   timestamps as numbers.
//!
//! ```
//! use session_core::Id;
//! use session_core::store::{Data, Record, Value, now};
//!
//! let mut data = Data::new();
//! data.insert("cart".into(), Value::new(&["sku-1"]).unwrap());
//! let record = Record::new(Id::random(), data, now(), None);
//! let bytes = record.encode().unwrap();
//! assert_eq!(Record::decode(record.id.clone(), &bytes).unwrap(), record);
//! ```
//!
//! The [`test_suite`](crate::test_suite) (feature `test-suite`) checks a
//! [`SessionStore`] against the whole contract.

mod binding;
mod client_store;
mod clock;
mod record;
mod session_store;
mod user_index;
mod value;

pub use binding::Binding;
pub use client_store::{ClientStore, Opened};
pub use clock::{from_unix_millis, now, unix_millis};
pub use record::{DecodeError, EncodeError, Record};
pub use session_store::SessionStore;
pub use user_index::{UserIndex, user_key};
pub use value::{Data, Value, ValueError};
