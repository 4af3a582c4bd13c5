//! Property tests for everything session-core parses from the wire or a
//! store: session IDs from cookies and stored record encodings. Arbitrary
//! input must never panic, never allocate without bound, and never be
//! accepted unless it is well formed.

use proptest::prelude::*;
use session_core::Id;
use session_core::store::{Record, Value};
use test_support::corpus::mutate;

const RECORD_CORPUS: &str = include_str!("corpus/records.txt");

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("corpus hex"))
        .collect()
}

/// The committed corpus: (whether it must decode, the bytes).
fn record_corpus() -> Vec<(bool, Vec<u8>)> {
    RECORD_CORPUS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| match line.split_once(' ') {
            Some(("ok", bytes)) => (true, hex(bytes)),
            Some(("err", bytes)) => (false, hex(bytes)),
            _ => panic!("corpus line is not `ok <hex>` or `err <hex>`: {line:?}"),
        })
        .collect()
}

/// Decodes `bytes` and reads every value in a few shapes: none of it may
/// panic.
fn decode_and_read(bytes: &[u8]) -> bool {
    let Ok(record) = Record::decode(Id::random(), bytes) else {
        return false;
    };
    for value in record.data.values() {
        let _ = value.get::<serde_json::Value>();
        let _ = value.get::<Vec<String>>();
        let _ = value.get::<u64>();
        let _ = format!("{value:?}");
    }
    true
}

#[test]
fn corpus_records_decode_as_recorded() {
    let corpus = record_corpus();
    assert!(corpus.len() >= 15, "the corpus is read");
    for (ok, bytes) in corpus {
        assert_eq!(
            decode_and_read(&bytes),
            ok,
            "{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
}

/// A corpus entry with some bytes replaced, removed or inserted.
fn mutated_record() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = record_corpus().into_iter().map(|(_, b)| b).collect();
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(mut bytes, edits)| {
            mutate(&mut bytes, edits);
            bytes
        })
}

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
    fn mutated_corpus_records_never_panic(bytes in mutated_record()) {
        let _ = decode_and_read(&bytes);
    }

    #[test]
    fn records_round_trip(
        version in 1u64..,
        keys in proptest::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..16),
        text in ".{0,64}",
    ) {
        let mut data = session_core::store::Data::new();
        for (k, v) in keys {
            data.insert(k, Value::new(&v).unwrap());
        }
        data.insert("text".into(), Value::new(&text).unwrap());
        let now = session_core::store::now();
        let mut record = Record::new(Id::random(), data, now, Some(now + time::Duration::hours(1)));
        record.version = version;
        let bytes = record.encode().unwrap();
        prop_assert_eq!(Record::decode(record.id.clone(), &bytes).unwrap(), record);
    }
}
