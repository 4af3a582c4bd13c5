//! Micro-benchmarks of the session stores' hot paths.
//!
//! - Record encode/decode of a 2 KB cart (20 items).
//! - A `RedisStore` load + save round trip against a raw `GET` + `SET` of
//!   the same bytes on the same server (`REDIS_URL`, default
//!   `redis://127.0.0.1:6379`; start it with
//!   `eval "$(scripts/services.sh up)"`).
//!
//! Run with: `cargo bench -p session-stores --features redis --bench stores`
//!
//! After criterion's report, the bench prints ratio lines of its own,
//! measured in the same run: store path / baseline.
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use redis::aio::ConnectionManager;
use serde_json::json;
use session_core::record::now;
use session_core::{Data, Id, Record, SessionStore};
use session_stores::RedisStore;

/// A session holding a 20-item cart, about 2 KB encoded.
fn cart_record() -> Record {
    let items: Vec<_> = (0..20)
        .map(|i| {
            json!({
                "sku": format!("SKU-{i:06}"),
                "name": format!("Product number {i} of the spring catalogue"),
                "qty": i % 4 + 1,
                "price_cents": 1999 + i * 100,
                "tags": ["sale", "new"],
            })
        })
        .collect();
    let mut data = Data::new();
    data.insert("cart".into(), json!(items));
    data.insert("user".into(), json!({"id": 42, "name": "Alice"}));
    let now = now();
    Record::new(
        Id::random(),
        data,
        now,
        Some(now + Duration::from_secs(3600)),
    )
}

/// Mean time per call of `f` over `n` calls.
fn mean<F: FnMut()>(n: u32, mut f: F) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed() / n
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);

    // ---- encode / decode --------------------------------------------------
    let record = cart_record();
    let bytes = record.encode().expect("encode");
    let json = serde_json::to_vec(&record.data).expect("json");
    let mut g = c.benchmark_group("record_2kb_cart");
    g.bench_function("encode", |b| b.iter(|| black_box(&record).encode()));
    g.bench_function("decode", |b| {
        b.iter(|| Record::decode(record.id.clone(), black_box(&bytes)))
    });
    g.bench_function("serde_json_to_vec_baseline", |b| {
        b.iter(|| serde_json::to_vec(black_box(&record.data)))
    });
    g.finish();

    // ---- Redis round trip -------------------------------------------------
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (store, raw) = rt.block_on(async {
        let store = RedisStore::connect(&url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach Redis at REDIS_URL={url}: {e}; start it with \
                 `eval \"$(scripts/services.sh up)\"`"
            )
        });
        let raw = ConnectionManager::new(redis::Client::open(url.as_str()).expect("url"))
            .await
            .expect("raw connection");
        (store, raw)
    });
    let mut stored = record.clone();
    rt.block_on(store.create(&mut stored)).expect("create");
    let raw_key = format!("bench:raw:{{{}}}", Id::random());
    let round_trip = || async {
        let mut current = store
            .load(&stored.id)
            .await
            .unwrap()
            .expect("stored record");
        let expected = current.version;
        current.version += 1;
        assert!(
            store.save(&current, expected).await.unwrap(),
            "conflict in a lone writer"
        );
    };
    let raw_round_trip = || {
        let mut conn = raw.clone();
        let key = raw_key.clone();
        let bytes = bytes.clone();
        async move {
            let _: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(bytes)
                .arg("EX")
                .arg(3600)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    };
    let mut g = c.benchmark_group("redis_round_trip");
    g.bench_function("redis_store_load_save", |b| {
        b.to_async(&rt).iter(round_trip)
    });
    g.bench_function("raw_get_set_baseline", |b| {
        b.to_async(&rt).iter(raw_round_trip)
    });
    g.finish();
    c.final_summary();

    // ---- ratio lines, measured here in one run ------------------------------
    let encode = mean(20_000, || {
        black_box(record.encode().unwrap());
    });
    let decode = mean(20_000, || {
        black_box(Record::decode(record.id.clone(), &bytes).unwrap());
    });
    let json_ser = mean(20_000, || {
        black_box(serde_json::to_vec(&record.data).unwrap());
    });
    let n = 2_000;
    let store_rt = rt.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            round_trip().await;
        }
        started.elapsed() / n
    });
    let raw_rt = rt.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            raw_round_trip().await;
        }
        started.elapsed() / n
    });
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!(
        "record: {} bytes encoded (serde_json: {} bytes)",
        bytes.len(),
        json.len()
    );
    println!(
        "ratio encode / serde_json::to_vec: {:.2} ({encode:?} vs {json_ser:?})",
        ratio(encode, json_ser)
    );
    println!(
        "ratio decode / encode: {:.2} ({decode:?} vs {encode:?})",
        ratio(decode, encode)
    );
    println!(
        "ratio RedisStore load+save / raw GET+SET: {:.2} ({store_rt:?} vs {raw_rt:?})",
        ratio(store_rt, raw_rt)
    );
    rt.block_on(async {
        store.delete(&stored.id).await.unwrap();
        let mut conn = raw.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(&raw_key)
            .query_async(&mut conn)
            .await
            .unwrap();
    });
}
