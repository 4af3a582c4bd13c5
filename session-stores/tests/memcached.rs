//! The Memcached store against real Memcached servers: the two shared nodes
//! from `scripts/services.sh` (found through `MEMCACHED_URLS`, default
//! `127.0.0.1:11211,127.0.0.1:11212`), plus private `memcached` processes
//! from `test-support` that the tests start themselves (a node going down),
//! and a proxy that counts the commands sent.
//! A test whose server cannot be reached fails and says how to start it.
#![cfg(feature = "memcached")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::store::now;
use session_core::store::{Data, Record};
use session_core::test_suite::{TestApp, assert_no_lost_updates};
use session_core::{Error, Id, SessionLayer, SessionStore};
use session_stores::MemcachedStore;
use test_support::memcached::{Memcached, shared_nodes, shared_urls};
use test_support::{START_HINT, free_port};

// ---- where the servers are ----------------------------------------------

/// The shared nodes, each checked to answer on its own.
fn nodes() -> Vec<String> {
    let nodes = shared_nodes();
    for node in &nodes {
        if let Err(e) = TcpStream::connect(node) {
            panic!(
                "cannot reach Memcached at {node} (MEMCACHED_URLS={}): {e}; {START_HINT}",
                shared_urls()
            );
        }
    }
    nodes
}

async fn shared() -> MemcachedStore {
    let urls = nodes().join(",");
    MemcachedStore::connect(&urls).await.unwrap_or_else(|e| {
        panic!("cannot reach Memcached at MEMCACHED_URLS={urls}: {e}; {START_HINT}")
    })
}

fn record(data: &[(&str, serde_json::Value)], ttl: Option<Duration>) -> Record {
    let data: Data = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone().into()))
        .collect();
    Record::new(Id::random(), data, now(), ttl.map(|t| now() + t))
}

/// A raw meta-protocol connection, to look at items behind the store.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn new(node: &str) -> Raw {
        let stream = TcpStream::connect(node)
            .unwrap_or_else(|e| panic!("cannot reach Memcached at {node}: {e}; {START_HINT}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Sends `command` (with `value` as its data block, if any); returns the
    /// reply line and the value of a `VA` reply.
    fn send(&mut self, command: &str, value: Option<&[u8]>) -> (String, Vec<u8>) {
        let mut out = format!("{command}\r\n").into_bytes();
        if let Some(v) = value {
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).unwrap();
        let line = self.line();
        let mut data = Vec::new();
        if let Some(rest) = line.strip_prefix("VA ") {
            let len: usize = rest.split(' ').next().unwrap().parse().unwrap();
            data.resize(len + 2, 0);
            self.reader.read_exact(&mut data).unwrap();
            data.truncate(len);
        }
        (line, data)
    }

    fn set(&mut self, key: &str, value: &[u8]) {
        let (line, _) = self.send(&format!("ms {key} {} T600", value.len()), Some(value));
        assert_eq!(line, "HD", "raw set of {key}");
    }

    fn ttl(&mut self, key: &str) -> i64 {
        let (line, _) = self.send(&format!("mg {key} t"), None);
        let t = line
            .split(' ')
            .find_map(|w| w.strip_prefix('t'))
            .unwrap_or_else(|| panic!("no TTL for {key}: {line}"));
        t.parse().unwrap()
    }

    fn value(&mut self, key: &str) -> Vec<u8> {
        let (line, data) = self.send(&format!("mg {key} v"), None);
        assert!(line.starts_with("VA"), "no item {key}: {line}");
        data
    }
}

// ---- conformance ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_pass_the_conformance_suite() {
    session_core::test_suite::run(shared).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_passes_the_conformance_suite() {
    let node = nodes()[0].clone();
    session_core::test_suite::run(|| async {
        MemcachedStore::connect(&node)
            .await
            .unwrap_or_else(|e| panic!("cannot reach Memcached at {node}: {e}; {START_HINT}"))
    })
    .await
    .assert_passed();
}

const UPDATES: usize = 200;

fn layer_for(store: Arc<dyn SessionStore>) -> SessionLayer {
    SessionLayer::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_200_concurrent_updates_over_3_instances_all_land() {
    let kept = assert_no_lost_updates(shared, UPDATES, layer_for).await;
    eprintln!("last-writer-wins kept {kept} of {UPDATES}");
}

// ---- layout, expiry, limits ------------------------------------------------

#[tokio::test]
async fn sessions_spread_over_both_nodes_by_id() {
    let store = shared().await;
    let nodes = nodes();
    let mut on = std::collections::HashMap::<String, usize>::new();
    for _ in 0..200 {
        let mut r = record(&[("k", "v".into())], Some(Duration::from_secs(60)));
        store.create(&mut r).await.unwrap();
        let node = store.node_for(&r.id).to_owned();
        // The item is on the node the store names, and only there.
        for n in &nodes {
            let (line, _) = Raw::new(n).send(&format!("mg {} v", store.key(&r.id)), None);
            assert_eq!(line.starts_with("VA"), *n == node, "{n}: {line}");
        }
        *on.entry(node).or_default() += 1;
        store.delete(&r.id).await.unwrap();
    }
    for n in &nodes {
        let share = on.get(n).copied().unwrap_or(0);
        assert!(
            share > 200 / nodes.len() / 2,
            "{n} holds {share} of 200: {on:?}"
        );
    }
}

#[tokio::test]
async fn lifetime_follows_the_expiry_and_touch_leaves_the_item_alone() {
    let store = MemcachedStore::builder()
        .with_key_prefix("stores-test:")
        .connect(&nodes().join(","))
        .await
        .unwrap();
    let mut r = record(&[("k", "v".into())], Some(Duration::from_secs(600)));
    store.create(&mut r).await.unwrap();
    let key = store.key(&r.id);
    assert_eq!(key, format!("stores-test:{}", r.id));
    let mut raw = Raw::new(store.node_for(&r.id));
    let ttl = raw.ttl(&key);
    assert!((598..=601).contains(&ttl), "TTL {ttl} for a 600 s session");

    let before = raw.value(&key);
    let later = now() + Duration::from_secs(7200);
    assert!(store.touch(&r.id, Some(later)).await.unwrap());
    assert_eq!(raw.value(&key), before, "touch rewrote the item");
    let ttl = raw.ttl(&key);
    assert!(
        (7198..=7201).contains(&ttl),
        "TTL {ttl} after a touch to 2 h"
    );
    // Another instance, which never saw the touch, reads the exact expiry.
    let other = MemcachedStore::builder()
        .with_key_prefix("stores-test:")
        .connect(&nodes().join(","))
        .await
        .unwrap();
    let loaded = other.load(&r.id).await.unwrap().unwrap();
    assert_eq!(loaded.expires_at, Some(later));
    assert_eq!((loaded.version, &loaded.data), (r.version, &r.data));

    // No expiry: no lifetime.
    assert!(store.touch(&r.id, None).await.unwrap());
    assert_eq!(raw.ttl(&key), -1);
    assert_eq!(other.load(&r.id).await.unwrap().unwrap().expires_at, None);

    // A save sets the lifetime again, and the old note no longer applies.
    let mut next = other.load(&r.id).await.unwrap().unwrap();
    next.version += 1;
    next.expires_at = Some(now() + Duration::from_secs(60));
    assert!(other.save(&next, r.version).await.unwrap());
    let ttl = raw.ttl(&key);
    assert!((58..=61).contains(&ttl), "TTL {ttl} after a save with 60 s");
    assert_eq!(store.load(&r.id).await.unwrap(), Some(next));
}

/// Memcached keeps its own clock, which ticks once a second and can run
/// some seconds behind the wall clock on a loaded machine, so a TTL it
/// reports for an absolute expiry is only close to the one sent. A
/// relative value over 30 days would instead be read as a time in 1970
/// and the item would be gone.
fn assert_about(ttl: i64, want: i64, when: &str) {
    assert!(
        (want - 60..=want + 60).contains(&ttl),
        "TTL {ttl} {when}, expected about {want}"
    );
}

#[tokio::test]
async fn expiry_beyond_30_days_is_an_absolute_time() {
    let store = shared().await;
    let forty_days = Duration::from_secs(40 * 24 * 3600);
    let mut r = record(&[("k", "v".into())], Some(forty_days));
    store.create(&mut r).await.unwrap();
    let mut raw = Raw::new(store.node_for(&r.id));
    let ttl = raw.ttl(&store.key(&r.id));
    // Sent as a relative 40 days, Memcached would read it as a time in
    // 1970 and drop the item at once.
    assert_about(ttl, forty_days.as_secs() as i64, "after create");
    assert_eq!(store.load(&r.id).await.unwrap(), Some(r.clone()));

    let fifty_days = now() + Duration::from_secs(50 * 24 * 3600);
    assert!(store.touch(&r.id, Some(fifty_days)).await.unwrap());
    let ttl = raw.ttl(&store.key(&r.id));
    assert_about(ttl, 50 * 24 * 3600, "after touch");
    let loaded = store.load(&r.id).await.unwrap().unwrap();
    assert_eq!(loaded.expires_at, Some(fifty_days));

    let mut next = loaded;
    next.version += 1;
    next.expires_at = Some(now() + Duration::from_secs(31 * 24 * 3600));
    assert!(store.save(&next, r.version).await.unwrap());
    let ttl = raw.ttl(&store.key(&r.id));
    assert_about(ttl, 31 * 24 * 3600, "after save");
    store.delete(&r.id).await.unwrap();
}

#[tokio::test]
async fn too_large_is_refused_before_sending_and_keeps_the_previous_record() {
    let store = shared().await;
    let mut r = record(
        &[("cart", serde_json::json!(["A-1"]))],
        Some(Duration::from_secs(600)),
    );
    store.create(&mut r).await.unwrap();

    let blob = "x".repeat(1024 * 1024);
    let mut big = r.clone();
    big.version += 1;
    big.data
        .insert("blob".into(), serde_json::json!(blob).into());
    match store.save(&big, r.version).await {
        Err(Error::TooLarge { size, limit }) => {
            assert!(size > limit, "{size} <= {limit}");
            assert_eq!(limit, 1024 * 1024);
        }
        other => panic!("a 1 MiB session saved as {other:?}"),
    }
    assert_eq!(
        store.load(&r.id).await.unwrap(),
        Some(r.clone()),
        "previous record lost"
    );

    // Just below the limit still fits.
    let mut fits = r.clone();
    fits.version += 1;
    fits.data.insert(
        "blob".into(),
        serde_json::json!("y".repeat(1000 * 1024)).into(),
    );
    assert!(store.save(&fits, r.version).await.unwrap());
    assert_eq!(store.load(&r.id).await.unwrap(), Some(fits));

    // A lower limit of our own.
    let small = MemcachedStore::builder()
        .with_max_item_size(4096)
        .connect(&nodes().join(","))
        .await
        .unwrap();
    let mut r = record(&[("blob", serde_json::json!("z".repeat(5000)))], None);
    assert!(matches!(
        small.create(&mut r).await,
        Err(Error::TooLarge { limit: 4096, .. })
    ));
    assert_eq!(small.load(&r.id).await.unwrap(), None, "half-written");
}

/// Items under the session prefix that this store did not write.
const ITEM_CORPUS: &str = include_str!("corpus/memcached_items.txt");

#[tokio::test]
async fn foreign_garbage_and_cut_items_are_decode_errors_never_panics() {
    let store = shared().await;
    let mut items: Vec<Vec<u8>> = ITEM_CORPUS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| hex(l.trim()))
        .collect();
    assert!(items.len() >= 8, "the corpus is read");
    // Every cut of a real item.
    let mut r = record(
        &[("cart", serde_json::json!(["A-1", "B-2"]))],
        Some(Duration::from_secs(600)),
    );
    store.create(&mut r).await.unwrap();
    let real = Raw::new(store.node_for(&r.id)).value(&store.key(&r.id));
    items.extend((0..real.len()).map(|cut| real[..cut].to_vec()));

    for item in items {
        let id = Id::random();
        Raw::new(store.node_for(&id)).set(&store.key(&id), &item);
        match store.load(&id).await {
            Err(Error::Decode(_)) | Ok(None) => {}
            other => panic!("item {item:?} loaded as {other:?}"),
        }
        // A save over it fails cleanly, or replaces it when its header
        // holds the expected version.
        let mut next = record(&[], None);
        next.id = id.clone();
        next.version = 2;
        match store.save(&next, 1).await {
            Err(Error::Decode(_)) | Ok(false) => {}
            Ok(true) => assert_eq!(store.load(&id).await.unwrap(), Some(next)),
            other => panic!("save over {item:?} gave {other:?}"),
        }
        store.delete(&id).await.unwrap();
    }
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex line {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

// ---- private servers ------------------------------------------------------

fn cookie_id(cookie: &str) -> Id {
    cookie
        .split_once('=')
        .and_then(|(_, v)| Id::parse(v))
        .expect("a session cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_fails_only_its_sessions_then_recovers() {
    let mut a = Memcached::start().await;
    let b = Memcached::start().await;
    let (a_addr, b_addr) = (a.addr(), b.addr());
    let store = MemcachedStore::builder()
        .with_connection_timeout(Duration::from_millis(300))
        .with_response_timeout(Duration::from_millis(500))
        .connect(&format!("{a_addr},{b_addr}"))
        .await
        .unwrap();
    let app = TestApp::new(SessionLayer::new(store.clone()), |s, _| async move {
        let n: u64 = s.get("n").await?.unwrap_or(0);
        s.insert("n", n + 1).await?;
        Ok(format!("{}", n + 1))
    });
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    while on_a.len() < 10 || on_b.len() < 10 {
        let reply = app.send(None).await;
        let cookie = reply.cookie.expect("a new session cookie");
        if store.node_for(&cookie_id(&cookie)) == a_addr {
            on_a.push(cookie);
        } else {
            on_b.push(cookie);
        }
    }

    a.kill();
    for cookie in &on_a {
        let started = Instant::now();
        let reply = app.send(Some(cookie)).await;
        assert_eq!(
            reply.status,
            http::StatusCode::SERVICE_UNAVAILABLE,
            "{reply:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
    for cookie in &on_b {
        let reply = app.send(Some(cookie)).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body, "2");
    }

    // Back on the same port: the store reconnects by itself; the node's
    // sessions were lost with it, and start fresh.
    a.restart().await;
    let started = Instant::now();
    loop {
        let reply = app.send(Some(&on_a[0])).await;
        if reply.status == http::StatusCode::OK {
            assert_eq!(reply.body, "1", "a session survived its node's restart?");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no recovery: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for cookie in &on_b {
        assert_eq!(app.send(Some(cookie)).await.body, "3");
    }
    drop(b);
}

#[tokio::test]
async fn connect_fails_only_when_no_node_answers() {
    let dead = format!("127.0.0.1:{}", free_port());
    let err = MemcachedStore::connect(&dead).await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert!(err.to_string().contains(&dead) || format!("{err:?}").contains(&dead));
    let live = nodes()[0].clone();
    MemcachedStore::connect(&format!("{dead},{live}"))
        .await
        .unwrap();
    for bad in ["", "host:port", "redis://127.0.0.1:6379"] {
        assert!(MemcachedStore::connect(bad).await.is_err(), "{bad:?}");
    }
    for prefix in ["with space:", "tab\t", &"p".repeat(240)] {
        let got = MemcachedStore::builder()
            .with_key_prefix(prefix)
            .connect(&live)
            .await;
        assert!(got.is_err(), "prefix {prefix:?} accepted");
    }
}

/// A proxy in front of a server that counts the commands sent through it.
struct CountingProxy {
    addr: String,
    commands: Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingProxy {
    async fn start(server: String) -> CountingProxy {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let commands = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = commands.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = tokio::net::TcpStream::connect(&server).await.unwrap();
                let (client_read, mut client_write) = client.into_split();
                let (mut up_read, mut up_write) = upstream.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
                });
                let count = count.clone();
                tokio::spawn(async move {
                    let mut reader = tokio::io::BufReader::new(client_read);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let mut out = line.clone().into_bytes();
                        // `ms <key> <len> …` carries a data block.
                        if let Some(len) = line.strip_prefix("ms ").and_then(|rest| {
                            rest.split(' ')
                                .nth(1)
                                .and_then(|l| l.trim().parse::<usize>().ok())
                        }) {
                            let mut data = vec![0; len + 2];
                            reader.read_exact(&mut data).await.unwrap();
                            out.extend_from_slice(&data);
                        }
                        if up_write.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        CountingProxy { addr, commands }
    }

    fn count(&self) -> usize {
        self.commands.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_costs_one_command_and_a_write_two() {
    let proxy = CountingProxy::start(nodes()[0].clone()).await;
    let store = MemcachedStore::connect(&proxy.addr).await.unwrap();
    let reader = TestApp::new(SessionLayer::new(store.clone()), |s, _| async move {
        let n: u64 = s.get("n").await?.unwrap_or(0);
        Ok(n.to_string())
    });
    let writer = TestApp::new(SessionLayer::new(store.clone()), |s, _| async move {
        let n: u64 = s.get("n").await?.unwrap_or(0);
        s.insert("n", n + 1).await?;
        Ok(String::new())
    });
    let before = proxy.count();
    let cookie = writer.send(None).await.cookie.expect("a session cookie");
    assert_eq!(proxy.count() - before, 1, "a new session");
    // A store instance that has not read the session yet.
    let cold = MemcachedStore::connect(&proxy.addr).await.unwrap();
    let cold_writer = TestApp::new(SessionLayer::new(cold), |s, _| async move {
        let n: u64 = s.get("n").await?.unwrap_or(0);
        s.insert("n", n + 1).await?;
        Ok(String::new())
    });
    for (name, app, want) in [
        ("read", &reader, 1),
        ("write", &writer, 2),
        ("write on another instance", &cold_writer, 2),
        ("write again", &writer, 2),
        ("read again", &reader, 1),
    ] {
        let before = proxy.count();
        let reply = app.send(Some(&cookie)).await;
        assert_eq!(reply.status, http::StatusCode::OK, "{name}: {reply:?}");
        let used = proxy.count() - before;
        assert_eq!(used, want, "{name} used {used} Memcached commands");
    }
    assert_eq!(reader.send(Some(&cookie)).await.body, "4");
}
