//! Micro-benchmarks of the session stores' hot paths.
//!
//! - The session paths of a 2 KB cart (20 items): read (decode the record,
//!   get the cart as its type) and write (store the cart, encode the
//!   record), against the same session kept the way a JSON-valued store
//!   keeps it (values as `serde_json::Value` trees, the record in
//!   MessagePack, reads through `serde_json::from_value`).
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

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use std::cell::RefCell;
use std::collections::BTreeMap;

use redis::aio::ConnectionManager;
use serde_json::json;
use session_core::store::{Record, Value};
use session_core::{Id, SessionStore};
use session_stores::RedisStore;

use common::{Item, cart, cart_record};

/// The session's data the way a JSON-valued store keeps it.
type JsonData = BTreeMap<String, serde_json::Value>;

fn json_data() -> JsonData {
    JsonData::from([
        ("cart".into(), serde_json::to_value(cart()).expect("json")),
        ("user".into(), json!({"id": 42, "name": "Alice"})),
    ])
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
    let mut c = common::criterion();

    // ---- the session paths of one request --------------------------------
    let record = cart_record();
    let bytes = record.encode().expect("encode");
    let tree = json_data();
    let tree_bytes = rmp_serde::to_vec(&tree).expect("tree");
    let items = cart();
    // Read: the stored bytes to the cart as its type.
    let read = || {
        let r = Record::decode(record.id.clone(), black_box(&bytes)).unwrap();
        r.data["cart"].get::<Vec<Item>>().unwrap()
    };
    let tree_read = || {
        let t: JsonData = rmp_serde::from_slice(black_box(&tree_bytes)).unwrap();
        serde_json::from_value::<Vec<Item>>(t["cart"].clone()).unwrap()
    };
    // Write: a changed cart into the session's data, then the bytes to
    // store.
    let writing = RefCell::new(record.clone());
    let write = || {
        let mut r = writing.borrow_mut();
        r.data
            .insert("cart".into(), Value::new(black_box(&items)).unwrap());
        r.encode().unwrap()
    };
    let tree_writing = RefCell::new(tree.clone());
    let tree_write = || {
        let mut t = tree_writing.borrow_mut();
        t.insert(
            "cart".into(),
            serde_json::to_value(black_box(&items)).unwrap(),
        );
        rmp_serde::to_vec(&*t).unwrap()
    };
    let mut g = c.benchmark_group("session_2kb_cart");
    g.bench_function("read", |b| b.iter(read));
    g.bench_function("read_json_tree_baseline", |b| b.iter(tree_read));
    g.bench_function("write", |b| b.iter(write));
    g.bench_function("write_json_tree_baseline", |b| b.iter(tree_write));
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
    let reads = mean(20_000, || {
        black_box(read());
    });
    let tree_reads = mean(20_000, || {
        black_box(tree_read());
    });
    let writes = mean(20_000, || {
        black_box(write());
    });
    let tree_writes = mean(20_000, || {
        black_box(tree_write());
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
        "record: {} bytes encoded (as a JSON-value tree in MessagePack: {} bytes)",
        bytes.len(),
        tree_bytes.len()
    );
    println!(
        "ratio read (decode + get cart) / JSON-value tree: {:.2} ({reads:?} vs {tree_reads:?})",
        ratio(reads, tree_reads)
    );
    println!(
        "ratio write (insert cart + encode) / JSON-value tree: {:.2} ({writes:?} vs {tree_writes:?})",
        ratio(writes, tree_writes)
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
