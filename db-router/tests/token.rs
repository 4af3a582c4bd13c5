//! Causal token parsing: garbage is an error, never a panic.

use db_router::{CausalToken, Error, Gtid, GtidPosition, Lsn, Position};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn valid_tokens() -> Vec<String> {
    vec![
        CausalToken::new(None).to_string(),
        CausalToken::new(Some(Position::Lsn(Lsn(0x16_B374_D848)))).to_string(),
        CausalToken::new(Some(Position::Gtid(GtidPosition::new([
            Gtid {
                domain: 0,
                server: 1,
                sequence: 42,
            },
            Gtid {
                domain: 3,
                server: 2,
                sequence: u64::MAX,
            },
        ]))))
        .to_string(),
    ]
}

fn check(input: &str) {
    match CausalToken::parse(input) {
        Ok(token) => {
            // Whatever parses must print back to something that parses to
            // the same token.
            let again = CausalToken::parse(&token.to_string()).expect("reparse");
            assert_eq!(again, token, "{input:?}");
        }
        Err(error) => {
            assert!(!error.reason().is_empty());
            // Converted into the crate's error, it is an invalid token.
            assert!(matches!(Error::from(error), Error::InvalidToken(_)));
        }
    }
}

#[test]
fn random_strings_never_panic() {
    let alphabet: Vec<char> = "v1.lg-_0123456789abcdefABCDEF/ \u{e9}\u{1F600}\0;=,+"
        .chars()
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(40);
        let s: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        check(&s);
        check(&format!("v1.{s}"));
    }
}

#[test]
fn mutated_valid_tokens_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let bytes = b"v1.lg-_09afAF/x+\xff";
    for token in valid_tokens() {
        assert!(CausalToken::parse(&token).is_ok(), "{token}");
        for _ in 0..5_000 {
            let mut t: Vec<u8> = token.clone().into_bytes();
            for _ in 0..1 + rng.below(3) {
                match rng.below(3) {
                    0 if !t.is_empty() => {
                        let i = rng.below(t.len());
                        t[i] = bytes[rng.below(bytes.len())];
                    }
                    1 if !t.is_empty() => {
                        let i = rng.below(t.len());
                        t.remove(i);
                    }
                    _ => {
                        let i = rng.below(t.len() + 1);
                        t.insert(i, bytes[rng.below(bytes.len())]);
                    }
                }
            }
            check(&String::from_utf8_lossy(&t));
        }
    }
}

#[test]
fn overlong_and_edge_inputs_are_errors() {
    for bad in [
        String::new(),
        "v1".into(),
        "v1.".into(),
        "v9.1".into(),
        "v1.1.l".into(),
        "v1.ffffffffffffffff1".into(),
        "v1.1.l10000000000000000".into(),
        format!("v1.1.g{}", vec!["1-1-1"; 100].join("_")),
        "v1.1".repeat(1000),
    ] {
        let err = CausalToken::parse(&bad).expect_err(&bad);
        assert!(err.to_string().starts_with("invalid causal token"), "{err}");
    }
}
