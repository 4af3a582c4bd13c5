//! Property tests for the sealed cookie: arbitrary values never open and
//! never panic; any single-byte change to a sealed value is rejected.
#![cfg(feature = "cookie")]

use proptest::prelude::*;
use session_core::store::{Data, Record, now};
use session_core::{ClientStore, Id};
use session_stores::cookie::{CookieStore, Key};
use test_support::corpus::mutate;

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

const COOKIE_CORPUS: &str = include_str!("corpus/cookies.txt");

/// The committed corpus: (whether it must open, cookie name, value).
fn cookie_corpus() -> Vec<(bool, &'static str, &'static str)> {
    COOKIE_CORPUS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (Some(kind), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("corpus line is not `ok|bad <name> <value>`: {line:?}");
            };
            let value = if value == "-" { "" } else { value };
            match kind {
                "ok" => (true, name, value),
                "bad" => (false, name, value),
                _ => panic!("corpus line is not `ok|bad <name> <value>`: {line:?}"),
            }
        })
        .collect()
}

#[test]
fn corpus_cookies_open_as_recorded() {
    let store = CookieStore::new(Key::from_bytes([7; 32]));
    let corpus = cookie_corpus();
    assert!(corpus.len() >= 20, "the corpus is read");
    let mut carts = 0;
    for (ok, name, value) in corpus {
        let opened = store.open(name, value);
        assert_eq!(opened.is_some(), ok, "{name} {value}");
        if let Some(cart) = opened.and_then(|o| o.record.data.get("cart").cloned()) {
            let cart: serde_json::Value = cart.get().unwrap();
            assert_eq!(cart["items"][0]["sku"], "SKU-0001");
            carts += 1;
        }
    }
    assert_eq!(carts, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn changed_corpus_cookies_never_open_and_never_panic(
        entry in proptest::sample::select(cookie_corpus()),
        edits in proptest::collection::vec((any::<usize>(), "[A-Za-z0-9_=+/ -]", 0u8..3), 1..4),
    ) {
        let store = CookieStore::new(Key::from_bytes([7; 32]));
        let (was_good, name, value) = entry;
        let mut chars: Vec<char> = value.chars().collect();
        mutate(
            &mut chars,
            edits.into_iter().map(|(at, c, kind)| (at, c.chars().next().unwrap(), kind)),
        );
        let mutated: String = chars.into_iter().collect();
        let opened = store.open(name, &mutated).is_some();
        // A changed valid cookie never opens. A changed bad one may turn
        // into a good one (say, the extended value cut back), so for those
        // only "no panic" holds.
        if was_good && mutated != value {
            prop_assert!(!opened, "{}", mutated);
        }
    }
}
