//! The causal-token string, which arrives from clients (cookie, header or
//! session): the committed corpus in `tests/corpus/tokens.txt`, then
//! property tests on arbitrary and mutated input. Parsing never panics,
//! accepts only well-formed tokens, and what it accepts prints back the
//! same.

use db_router::token::MAX_TOKEN_LEN;
use db_router::{CausalToken, Gtid, GtidPosition, Lsn, Position};
use proptest::prelude::*;
use test_support::corpus::mutate;

const CORPUS: &str = include_str!("corpus/tokens.txt");

fn corpus() -> impl Iterator<Item = (bool, &'static str)> {
    CORPUS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| match line.split_once(' ') {
            Some(("ok", token)) => (true, token),
            Some(("bad", token)) => (false, token),
            _ if line == "bad" => (false, ""),
            _ => panic!("corpus line is not `ok <token>` or `bad <token>`: {line:?}"),
        })
}

#[test]
fn corpus_tokens_parse_as_recorded() {
    let mut seen = 0;
    for (ok, token) in corpus() {
        seen += 1;
        match CausalToken::parse(token) {
            Ok(parsed) => {
                assert!(ok, "accepted {token:?} as {parsed:?}");
                assert_eq!(parsed.to_string(), token, "prints back the same");
            }
            Err(e) => assert!(!ok, "refused {token:?}: {e}"),
        }
    }
    assert!(seen >= 30, "the corpus is read ({seen} entries)");
}

#[test]
fn overlong_tokens_are_refused_before_parsing() {
    let long = format!("v1.1.g{}", "0-1-1_".repeat(MAX_TOKEN_LEN));
    assert!(CausalToken::parse(&long).is_err());
}

fn position() -> impl Strategy<Value = Option<Position>> {
    let gtid =
        (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(domain, server, sequence)| Gtid {
            domain,
            server,
            sequence,
        });
    prop_oneof![
        Just(None),
        any::<u64>().prop_map(|l| Some(Position::Lsn(Lsn(l)))),
        proptest::collection::vec(gtid, 1..8)
            .prop_map(|g| Some(Position::Gtid(GtidPosition::new(g)))),
    ]
}

/// A corpus entry with some bytes replaced, removed or repeated.
fn mutated() -> impl Strategy<Value = String> {
    let seeds: Vec<&'static str> = corpus().map(|(_, t)| t).collect();
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            mutate(&mut bytes, edits);
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_strings_never_panic_and_round_trip_when_accepted(s in ".{0,600}") {
        if let Ok(token) = CausalToken::parse(&s) {
            prop_assert!(s.len() <= MAX_TOKEN_LEN);
            prop_assert_eq!(CausalToken::parse(&token.to_string()).ok(), Some(token));
        }
    }

    #[test]
    fn mutated_corpus_tokens_never_panic_and_round_trip_when_accepted(s in mutated()) {
        if let Ok(token) = CausalToken::parse(&s) {
            prop_assert_eq!(CausalToken::parse(&token.to_string()).ok(), Some(token));
        }
    }

    #[test]
    fn every_token_prints_in_a_form_that_parses_back(
        written_at in 0u64..=u64::from(u32::MAX) * 1000,
        position in position(),
    ) {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(written_at);
        let token = CausalToken::with_written_at(position, at);
        let text = token.to_string();
        prop_assert!(text.len() <= MAX_TOKEN_LEN, "{}", text);
        prop_assert_eq!(CausalToken::parse(&text).ok(), Some(token));
    }
}
