//! Property tests for the sealed cookie: arbitrary values never open and
//! never panic; any single-byte change to a sealed value is rejected.
#![cfg(feature = "cookie")]

use proptest::prelude::*;
use session_core::record::now;
use session_core::{ClientStore, Data, Id, Record};
use session_stores::cookie::{CookieStore, Key};

fn sealed(store: &CookieStore) -> String {
    let mut data = Data::new();
    data.insert("cart".into(), serde_json::json!(["A", "B"]).into());
    let record = Record::new(
        Id::random(),
        data,
        now(),
        Some(now() + time::Duration::hours(1)),
    );
    store.seal("id", &record).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_values_never_open(value in ".{0,600}") {
        let store = CookieStore::new(Key::from_bytes([7; 32]));
        prop_assert!(store.open("id", &value).is_none());
    }

    #[test]
    fn base64_values_never_open(value in "[A-Za-z0-9_-]{0,600}") {
        let store = CookieStore::new(Key::from_bytes([7; 32]));
        prop_assert!(store.open("id", &value).is_none());
    }

    #[test]
    fn any_changed_byte_is_rejected(index in any::<prop::sample::Index>(), c in "[A-Za-z0-9_-]") {
        let store = CookieStore::new(Key::from_bytes([9; 32]));
        let value = sealed(&store);
        let i = index.index(value.len());
        let c = c.chars().next().unwrap();
        prop_assume!(value.as_bytes()[i] != c as u8);
        let mut forged = value.clone().into_bytes();
        forged[i] = c as u8;
        let forged = String::from_utf8(forged).unwrap();
        prop_assert!(store.open("id", &forged).is_none(), "byte {} changed", i);
    }
}
