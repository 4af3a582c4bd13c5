//! Property tests for everything session-core parses from the wire or a
//! store: session IDs from cookies and stored record encodings. Arbitrary
//! input must never panic, never allocate without bound, and never be
//! accepted unless it is well formed.

use proptest::prelude::*;
use session_core::record::Value;
use session_core::{Id, Record};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn id_parse_accepts_only_canonical_ids(s in ".{0,64}") {
        if let Some(id) = Id::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert_eq!(s.len(), 22);
            prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn id_parse_of_url_safe_strings_of_22_chars(s in "[A-Za-z0-9_-]{22}") {
        // Exactly the canonical ones (last char's low bits zero) parse.
        let last = s.as_bytes()[21];
        let value = match last {
            b'A'..=b'Z' => last - b'A',
            b'a'..=b'z' => last - b'a' + 26,
            b'0'..=b'9' => last - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        prop_assert_eq!(Id::parse(&s).is_some(), value & 0b1111 == 0);
    }

    #[test]
    fn record_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Record::decode(Id::random(), &bytes);
    }

    #[test]
    fn record_decode_of_format_1_garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let mut input = vec![1u8];
        input.extend(bytes);
        let _ = Record::decode(Id::random(), &input);
    }

    #[test]
    fn record_decode_of_format_2_garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let mut input = vec![2u8];
        input.extend(bytes);
        if let Ok(record) = Record::decode(Id::random(), &input) {
            // Values are checked when read: that must not panic either.
            for value in record.data.values() {
                let _ = value.get::<serde_json::Value>();
                let _ = value.get::<Vec<String>>();
            }
        }
    }

    #[test]
    fn records_round_trip(
        version in 1u64..,
        keys in proptest::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..16),
        text in ".{0,64}",
    ) {
        let mut data = session_core::Data::new();
        for (k, v) in keys {
            data.insert(k, Value::new(&v).unwrap());
        }
        data.insert("text".into(), Value::new(&text).unwrap());
        let now = session_core::record::now();
        let mut record = Record::new(Id::random(), data, now, Some(now + time::Duration::hours(1)));
        record.version = version;
        let bytes = record.encode().unwrap();
        prop_assert_eq!(Record::decode(record.id.clone(), &bytes).unwrap(), record);
    }
}
