//! Micro-benchmarks of the cookie store: sealing and opening a session
//! holding a 20-item cart (about 2 KB encoded, 2.8 KB sealed).
//!
//! The baseline is the same work done with the primitives alone, in the
//! same run: `Record::encode`, AES-256-GCM with a fresh random nonce and
//! base64url for sealing; base64url, AES-256-GCM and `Record::decode` for
//! opening. The ratio is the store's own overhead (framing, associated
//! data, size check, expiry check).
//!
//! Run with: `cargo bench -p session-stores --features cookie --bench cookie`
//!
//! After criterion's report, the bench prints ratio lines of its own:
//! alternating chunks of both contenders, the median of the per-pair
//! ratios.
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use session_core::store::Record;
use session_core::{ClientStore, Id};
use session_stores::cookie::{CookieStore, Key};

use common::cart_record;

const COOKIE: &str = "id";

/// The primitives a seal is made of, without the store around them.
struct Raw {
    cipher: Aes256Gcm,
}

impl Raw {
    fn seal(&self, record: &Record) -> String {
        let mut plain = record.id.as_str().as_bytes().to_vec();
        plain.extend_from_slice(&record.encode().expect("encode"));
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("random nonce");
        let mut out = nonce.to_vec();
        out.extend_from_slice(
            &self
                .cipher
                .encrypt(&Nonce::from(nonce), plain.as_slice())
                .expect("encrypt"),
        );
        URL_SAFE_NO_PAD.encode(out)
    }

    fn open(&self, value: &str) -> Record {
        let raw = URL_SAFE_NO_PAD.decode(value).expect("base64");
        let (nonce, sealed) = raw.split_at(12);
        let nonce = Nonce::from(<[u8; 12]>::try_from(nonce).expect("nonce"));
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: b"",
                },
            )
            .expect("decrypt");
        let (id, body) = plain.split_at(22);
        let id = Id::parse(std::str::from_utf8(id).expect("utf-8")).expect("id");
        Record::decode(id, body).expect("decode")
    }
}

/// Runs `a` and `b` in `pairs` alternating chunks of `chunk` calls each and
/// returns (fastest chunk of a, fastest of b, median of the per-pair
/// ratios a/b).
fn paired(
    pairs: usize,
    chunk: u32,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (Duration, Duration, f64) {
    let time = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..chunk {
            f();
        }
        started.elapsed() / chunk
    };
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    let mut ratios = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let (ta, tb) = if i % 2 == 0 {
            let ta = time(&mut a);
            (ta, time(&mut b))
        } else {
            let tb = time(&mut b);
            (time(&mut a), tb)
        };
        best_a = best_a.min(ta);
        best_b = best_b.min(tb);
        ratios.push(ta.as_secs_f64() / tb.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    (best_a, best_b, ratios[ratios.len() / 2])
}

fn main() {
    let mut c = common::criterion();

    let record = cart_record();
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("random key");
    let store = CookieStore::new(Key::from_bytes(key));
    let raw = Raw {
        cipher: Aes256Gcm::new(&key.into()),
    };
    let sealed = store.seal(COOKIE, &record).expect("seal");
    let raw_sealed = raw.seal(&record);
    assert_eq!(
        store.open(COOKIE, &sealed).expect("open").record,
        raw.open(&raw_sealed)
    );

    let mut g = c.benchmark_group("cookie_2kb_cart");
    g.bench_function("seal", |b| {
        b.iter(|| store.seal(COOKIE, black_box(&record)))
    });
    g.bench_function("raw_seal_baseline", |b| {
        b.iter(|| raw.seal(black_box(&record)))
    });
    g.bench_function("open", |b| {
        b.iter(|| store.open(COOKIE, black_box(&sealed)))
    });
    g.bench_function("raw_open_baseline", |b| {
        b.iter(|| raw.open(black_box(&raw_sealed)))
    });
    g.finish();
    c.final_summary();

    let (seal, raw_seal, seal_ratio) = paired(
        100,
        200,
        || {
            black_box(store.seal(COOKIE, &record).expect("seal"));
        },
        || {
            black_box(raw.seal(&record));
        },
    );
    let (open, raw_open, open_ratio) = paired(
        100,
        200,
        || {
            black_box(store.open(COOKIE, &sealed).expect("open"));
        },
        || {
            black_box(raw.open(&raw_sealed));
        },
    );
    println!();
    println!(
        "cookie: record {} bytes encoded, {} bytes sealed",
        record.encode().expect("encode").len(),
        sealed.len()
    );
    println!("timing seal = {seal:?}, raw = {raw_seal:?} (fastest chunks)");
    println!("ratio cookie seal / raw encode+AES-GCM+base64: {seal_ratio:.2} (median of pairs)");
    println!("timing open = {open:?}, raw = {raw_open:?} (fastest chunks)");
    println!("ratio cookie open / raw base64+AES-GCM+decode: {open_ratio:.2} (median of pairs)");
}
