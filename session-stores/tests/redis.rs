//! The Redis store against real Redis servers: the shared single node, TLS
//! (with and without an ACL user) and Cluster from `scripts/services.sh`,
//! plus private servers and a private cluster that the tests start
//! themselves (command counts, outage, failover).
//!
//! The shared servers are found through `REDIS_URL`, `REDIS_TLS_URL`,
//! `REDIS_TLS_CA`, `REDIS_TLS_ACL_URL` and `REDIS_CLUSTER_URLS`, with the
//! defaults of `scripts/services.sh`. A test whose server cannot be reached
//! fails and says how to start it.
#![cfg(feature = "redis")]

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use session_core::store::now;
use session_core::test_suite::{TestApp, TestReply, assert_no_lost_updates};
use session_core::{Error, Id, SessionLayer, SessionStore};
use session_stores::RedisStore;

use common::{assert_unknown_format, cookie_id, record};
use test_support::redis::{
    RedisCluster, RedisConfig, RedisServer, cluster_urls, info_field, node_info,
    shared_url as redis_url, tls_acl_url, tls_ca, tls_url,
};
use test_support::services::setting;
use test_support::{START_HINT, wait_until};

// ---- where the servers are ----------------------------------------------

async fn single(url: &str, var: &str) -> RedisStore {
    RedisStore::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {var}={url}: {e}; {START_HINT}"))
}

/// rustls's crypto provider, which an application connecting over TLS
/// installs itself (the store never does).
fn install_crypto_provider() {
    // Already installed by another test of this binary: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn tls(url: &str, var: &str) -> RedisStore {
    install_crypto_provider();
    RedisStore::builder()
        .with_tls_root_cert_pem(tls_ca())
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach TLS Redis at {var}={url}: {e}; {START_HINT}"))
}

async fn near(url: &str, var: &str) -> RedisStore {
    RedisStore::builder()
        .with_near_cache(10_000)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {var}={url}: {e}; {START_HINT}"))
}

async fn near_cluster(urls: &[String]) -> RedisStore {
    RedisStore::builder()
        .with_near_cache(10_000)
        .connect_cluster(urls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the Redis Cluster at REDIS_CLUSTER_URLS={}: {e}; {START_HINT}",
                urls.join(",")
            )
        })
}

async fn cluster(urls: &[String]) -> RedisStore {
    RedisStore::connect_cluster(urls).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the Redis Cluster at REDIS_CLUSTER_URLS={}: {e}; {START_HINT}",
            urls.join(",")
        )
    })
}

// ---- conformance ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_passes_the_conformance_suite() {
    let url = redis_url();
    session_core::test_suite::run(|| single(&url, "REDIS_URL"))
        .await
        .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_passes_the_conformance_suite() {
    let url = tls_url();
    session_core::test_suite::run(|| tls(&url, "REDIS_TLS_URL"))
        .await
        .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_with_acl_user_passes_the_conformance_suite() {
    let url = tls_acl_url();
    session_core::test_suite::run(|| tls(&url, "REDIS_TLS_ACL_URL"))
        .await
        .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_passes_the_conformance_suite() {
    let urls = cluster_urls();
    session_core::test_suite::run(|| cluster(&urls))
        .await
        .assert_passed();
}

#[tokio::test]
async fn tls_checks_the_certificate_and_acl_checks_the_password() {
    // Reachable first, so that the failures below are about trust and
    // credentials, not about a missing server.
    let url = tls_acl_url();
    tls(&url, "REDIS_TLS_ACL_URL").await;
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());

    // Without the private CA the server's certificate is not trusted.
    let err = RedisStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");

    let wrong = url.replace(setting("REDIS_ACL_PASS"), "wrong-pass");
    assert_ne!(wrong, url, "REDIS_TLS_ACL_URL has no password to replace");
    let err = RedisStore::builder()
        .with_tls_root_cert_pem(tls_ca())
        .connect(&wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
}

// ---- layout ---------------------------------------------------------------

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at REDIS_URL={url}: {e}; {START_HINT}"))
}

async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&[u8]],
) -> T {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(conn).await.expect("redis command")
}

#[tokio::test]
async fn keys_are_prefixed_hash_tagged_and_expire_with_the_record() {
    let url = redis_url();
    let store = RedisStore::builder()
        .with_key_prefix("stores-test:")
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at REDIS_URL={url}: {e}; {START_HINT}"));
    let mut conn = raw(&url).await;

    let mut r = record(&[("k", "v".into())], Some(Duration::from_secs(600)));
    store.create(&mut r).await.unwrap();
    let key = store.key(&r.id);
    assert_eq!(key, format!("stores-test:{{{}}}", r.id));

    let pexpiretime: i64 = query(&mut conn, &[b"PEXPIRETIME", key.as_bytes()]).await;
    let want = session_core::store::unix_millis(r.expires_at.unwrap());
    assert_eq!(
        pexpiretime, want,
        "the key's TTL is not the record's expiry"
    );

    // The key holds `<version>:<expiry>:<token>:<record>`.
    let stored: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
    let parts: Vec<&[u8]> = stored.splitn(4, |&b| b == b':').collect();
    assert_eq!(parts[0], b"1", "version");
    assert_eq!(parts[1], want.to_string().as_bytes(), "expiry");
    assert_eq!(parts[3], r.encode().unwrap(), "record");

    // Touch moves the TTL and the expiry, but leaves the rest alone.
    let later = now() + Duration::from_secs(7200);
    assert!(store.touch(&r.id, Some(later)).await.unwrap());
    let touched: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
    let after: Vec<&[u8]> = touched.splitn(4, |&b| b == b':').collect();
    assert_eq!(
        after[1],
        session_core::store::unix_millis(later)
            .to_string()
            .as_bytes()
    );
    assert_eq!(
        (after[0], after[2], after[3]),
        (parts[0], parts[2], parts[3]),
        "touch rewrote more than the expiry"
    );
    let pexpiretime: i64 = query(&mut conn, &[b"PEXPIRETIME", key.as_bytes()]).await;
    assert_eq!(pexpiretime, session_core::store::unix_millis(later));
    assert_eq!(
        store.load(&r.id).await.unwrap().unwrap().expires_at,
        Some(later)
    );

    // No expiry: no TTL.
    assert!(store.touch(&r.id, None).await.unwrap());
    let pttl: i64 = query(&mut conn, &[b"PTTL", key.as_bytes()]).await;
    assert_eq!(pttl, -1, "a session without expiry has a TTL");
    assert_eq!(store.load(&r.id).await.unwrap().unwrap().expires_at, None);

    // A save sets the TTL again.
    let mut next = store.load(&r.id).await.unwrap().unwrap();
    next.version += 1;
    next.expires_at = Some(now() + Duration::from_secs(60));
    assert!(store.save(&next, r.version).await.unwrap());
    let pexpiretime: i64 = query(&mut conn, &[b"PEXPIRETIME", key.as_bytes()]).await;
    assert_eq!(
        pexpiretime,
        session_core::store::unix_millis(next.expires_at.unwrap())
    );
    store.delete(&r.id).await.unwrap();
}

#[tokio::test]
async fn unknown_record_format_is_a_decode_error() {
    let url = redis_url();
    let store = single(&url, "REDIS_URL").await;
    let mut conn = raw(&url).await;

    // A session whose record has a format byte from the future.
    let mut r = record(&[("k", "v".into())], Some(Duration::from_secs(60)));
    store.create(&mut r).await.unwrap();
    let key = store.key(&r.id);
    let stored: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
    let header = stored.len() - r.encode().unwrap().len();
    let mut bytes = stored.clone();
    bytes[header] = 0xEE;
    let _: () = query(&mut conn, &[b"SET", key.as_bytes(), &bytes, b"EX", b"60"]).await;
    let err = store.load(&r.id).await.unwrap_err();
    assert_unknown_format(&err);

    // A string not in the session's form, and a hash, where a session
    // belongs: every call is a decode error, none overwrites the key.
    for (i, garbage) in [&b"hello"[..], b"one::t:\x01", b"7:soon:t:\x01"]
        .into_iter()
        .enumerate()
    {
        let id = Id::random();
        let key = store.key(&id);
        let _: () = query(&mut conn, &[b"SET", key.as_bytes(), garbage, b"EX", b"60"]).await;
        let err = store.load(&id).await.unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{i}: {err:?}");
        let mut other = record(&[], Some(Duration::from_secs(60)));
        other.id = id.clone();
        other.version = 2;
        let err = store.save(&other, 1).await.unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{i}: {err:?}");
        let err = store.touch(&id, None).await.unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{i}: {err:?}");
        let still: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
        assert_eq!(still, garbage, "{i}: the key was overwritten");
    }
    let id = Id::random();
    let key = store.key(&id);
    let _: i64 = query(&mut conn, &[b"HSET", key.as_bytes(), b"v", b"1"]).await;
    let _: i64 = query(&mut conn, &[b"EXPIRE", key.as_bytes(), b"60"]).await;
    let err = store.load(&id).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn a_stored_session_that_does_not_decode_starts_a_fresh_one() {
    let url = redis_url();
    let store = single(&url, "REDIS_URL").await;
    let mut conn = raw(&url).await;
    let app = TestApp::new(SessionLayer::new(store.clone()), |s, _| async move {
        let n = s.update("n", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
        Ok(n.to_string())
    });
    // Not a session string, an empty record, a record cut short: each
    // request answers from a fresh session under a new ID, and the bad
    // string stays as it was.
    for garbage in [&b"hello"[..], b"1::t:", b"1::t:\x02\x94"] {
        let cookie = app.start_session().await.expect("a session");
        let key = store.key(&cookie_id(&cookie));
        let _: () = query(&mut conn, &[b"SET", key.as_bytes(), garbage, b"EX", b"60"]).await;
        let res = app.send(Some(&cookie)).await;
        assert_eq!(res.status, StatusCode::OK, "{garbage:?}: {}", res.body);
        assert_eq!(res.body, "1", "{garbage:?}: not a fresh session");
        let fresh = res.cookie.expect("a new cookie");
        assert_ne!(cookie_id(&fresh), cookie_id(&cookie), "{garbage:?}");
        let still: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
        assert_eq!(still, garbage, "{garbage:?}: the bad string was changed");
    }
    // A record in a format this build does not know (a newer build's, in
    // a rolling upgrade) is not garbage: 503 with Retry-After, untouched.
    let cookie = app.start_session().await.expect("a session");
    let key = store.key(&cookie_id(&cookie));
    let newer = b"1::t:\xEE";
    let _: () = query(&mut conn, &[b"SET", key.as_bytes(), newer, b"EX", b"60"]).await;
    let res = app.send(Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    let still: Vec<u8> = query(&mut conn, &[b"GET", key.as_bytes()]).await;
    assert_eq!(still, newer);
}

#[tokio::test]
async fn scripts_are_reloaded_after_a_script_flush() {
    let url = redis_url();
    let store = single(&url, "REDIS_URL").await;
    let mut conn = raw(&url).await;
    let mut r = record(&[("n", 1.into())], Some(Duration::from_secs(60)));
    store.create(&mut r).await.unwrap();
    // Forget every cached script: the next EVALSHA gets NOSCRIPT and the
    // store falls back to EVAL.
    let _: () = query(&mut conn, &[b"SCRIPT", b"FLUSH"]).await;
    let mut next = r.clone();
    next.version = 2;
    next.data.insert("n".into(), serde_json::json!(2).into());
    assert!(store.save(&next, 1).await.unwrap());
    assert_eq!(store.load(&r.id).await.unwrap(), Some(next));
}

// ---- concurrent updates ----------------------------------------------------

const UPDATES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_with_near_cache_passes_the_conformance_suite() {
    let url = redis_url();
    session_core::test_suite::run(|| near(&url, "REDIS_URL"))
        .await
        .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_with_near_cache_passes_the_conformance_suite() {
    let urls = cluster_urls();
    session_core::test_suite::run(|| near_cluster(&urls))
        .await
        .assert_passed();
}

// ---- a connection of its own per runtime ---------------------------------

/// `store`'s handle for the current runtime, which a store that opened its
/// own connection has.
async fn on_this_runtime(store: &RedisStore) -> Arc<dyn SessionStore> {
    store
        .on_current_runtime()
        .await
        .expect("a connection for this runtime")
        .expect("a store that opened its connection has one per runtime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_handle_for_a_runtime_passes_the_conformance_suite() {
    let url = redis_url();
    session_core::test_suite::run(|| async {
        on_this_runtime(&single(&url, "REDIS_URL").await).await
    })
    .await
    .assert_passed();
    session_core::test_suite::run(|| async {
        on_this_runtime(&near(&url, "REDIS_URL").await).await
    })
    .await
    .assert_passed();
}

/// The handle for a runtime is the same store: what one writes the other
/// reads at once (near cache or not), and saves through both are
/// compare-and-set on the same version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_for_a_runtime_shares_records_and_versions() {
    let url = redis_url();
    for (first, what) in [
        (single(&url, "REDIS_URL").await, "plain"),
        (near(&url, "REDIS_URL").await, "near cache"),
    ] {
        // Spawned, so that the handle's connection runs on another task
        // than the first one's, as on another worker.
        let second = {
            let first = first.clone();
            tokio::spawn(async move { on_this_runtime(&first).await })
                .await
                .unwrap()
        };
        let mut r = record(
            &[("n", serde_json::json!(1))],
            Some(Duration::from_secs(60)),
        );
        first.create(&mut r).await.unwrap();
        // Read through the near cache first, so that a stale entry would
        // show.
        assert_eq!(
            first.load(&r.id).await.unwrap().unwrap().version,
            1,
            "{what}"
        );
        let mut next = second
            .load(&r.id)
            .await
            .unwrap()
            .expect("written by the first");
        next.version = 2;
        next.data.insert("n".into(), serde_json::json!(2).into());
        assert!(second.save(&next, 1).await.unwrap(), "{what}");
        let seen = first.load(&r.id).await.unwrap().unwrap();
        assert_eq!((seen.version, &seen.data), (2, &next.data), "{what}");
        r.version = 2;
        assert!(
            !first.save(&r, 1).await.unwrap(),
            "{what}: a save on the old version must lose"
        );
        second.delete(&r.id).await.unwrap();
        assert!(first.load(&r.id).await.unwrap().is_none(), "{what}");
    }
}

/// A store on a connection the application opened shares it.
#[tokio::test]
async fn a_store_on_the_applications_connection_has_no_handle_per_runtime() {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).unwrap();
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at REDIS_URL={url}: {e}; {START_HINT}"));
    let store = RedisStore::builder().build_with_connection(conn).unwrap();
    assert!(store.on_current_runtime().await.unwrap().is_none());
}

fn layer_for(store: Arc<dyn SessionStore>) -> SessionLayer {
    SessionLayer::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_200_concurrent_updates_all_land() {
    let url = redis_url();
    let kept = assert_no_lost_updates(|| single(&url, "REDIS_URL"), UPDATES, layer_for).await;
    eprintln!("last-writer-wins kept {kept} of {UPDATES}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_cache_200_concurrent_updates_all_land() {
    let url = redis_url();
    let kept = assert_no_lost_updates(|| near(&url, "REDIS_URL"), UPDATES, layer_for).await;
    eprintln!("last-writer-wins kept {kept} of {UPDATES}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_200_concurrent_updates_all_land() {
    let urls = cluster_urls();
    let kept = assert_no_lost_updates(|| cluster(&urls), UPDATES, layer_for).await;
    eprintln!("last-writer-wins kept {kept} of {UPDATES}");
}

// ---- private servers ------------------------------------------------------

/// Counts the commands a private server runs for one request, two ways:
///
/// - `INFO commandstats` after `CONFIG RESETSTAT`: every command the server
///   ran, including those called inside scripts;
/// - `MONITOR`: the commands clients sent, each a round trip (commands run
///   by a script show up as `[0 lua]` there and are not counted).
///
/// The test's own bookkeeping commands are left out of both.
struct Meter {
    admin: redis::aio::MultiplexedConnection,
    admin_addr: String,
    monitor: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    marker: u64,
}

struct Counts {
    /// `cmdstat_*` calls, script internals included.
    stats: BTreeMap<String, u64>,
    /// Commands sent by the store, in order.
    sent: Vec<String>,
}

impl Drop for Meter {
    fn drop(&mut self) {
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
    }
}

impl Meter {
    async fn new(port: u16) -> Meter {
        let url = format!("redis://127.0.0.1:{port}");
        let mut admin = raw(&url).await;
        let info: String = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(&mut admin)
            .await
            .expect("CLIENT INFO");
        let admin_addr = info
            .split_whitespace()
            .find_map(|f| f.strip_prefix("addr="))
            .expect("addr in CLIENT INFO")
            .to_owned();
        let mut monitor = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "monitor"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli (is it installed? `scripts/services.sh up` installs it)");
        let stdout = monitor.stdout.take().expect("monitor output");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut meter = Meter {
            admin,
            admin_addr,
            monitor,
            lines,
            marker: 0,
        };
        // MONITOR is live once it shows our first marker.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let marker = meter.echo_marker().await;
            let seen = tokio::time::timeout(Duration::from_millis(200), async {
                while let Some(line) = meter.lines.recv().await {
                    if line.contains(&marker) {
                        return true;
                    }
                }
                false
            })
            .await;
            if seen == Ok(true) {
                break meter;
            }
            assert!(Instant::now() < deadline, "redis-cli monitor did not start");
        }
    }

    async fn echo_marker(&mut self) -> String {
        self.marker += 1;
        let marker = format!("meter-marker-{}", self.marker);
        let _: String = redis::cmd("ECHO")
            .arg(&marker)
            .query_async(&mut self.admin)
            .await
            .expect("ECHO");
        marker
    }

    /// The MONITOR lines up to a fresh marker.
    async fn lines_until_marker(&mut self) -> Vec<String> {
        let marker = self.echo_marker().await;
        let mut out = Vec::new();
        let collected = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(&marker) {
                    return;
                }
                out.push(line);
            }
        })
        .await;
        assert!(collected.is_ok(), "MONITOR output did not arrive");
        out
    }

    async fn measure<F: Future<Output = TestReply>>(&mut self, request: F) -> (TestReply, Counts) {
        self.lines_until_marker().await;
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut self.admin)
            .await
            .expect("CONFIG RESETSTAT");
        let reply = request.await;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.admin)
            .await
            .expect("INFO commandstats");
        let stats = info
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.parse().ok()?))
            })
            .filter(|(name, _): &(String, u64)| name != "info" && !name.starts_with("config"))
            .collect();
        let admin = format!(" {}]", self.admin_addr);
        let sent = self
            .lines_until_marker()
            .await
            .into_iter()
            .filter(|l| !l.contains(" lua]") && !l.contains(&admin))
            .map(|l| {
                l.split_once("] ")
                    .map(|(_, cmd)| {
                        cmd.split(' ')
                            .next()
                            .unwrap_or("")
                            .trim_matches('"')
                            .to_uppercase()
                    })
                    .unwrap_or(l)
            })
            .collect();
        (reply, Counts { stats, sent })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_counts_per_request() {
    let server = RedisServer::start(RedisConfig::new()).await;
    let url = server.url();
    let store = RedisStore::connect(&url).await.expect("private redis");
    let mut meter = Meter::new(server.port).await;

    // Cache the scripts first, as on any server that has seen a write.
    let mut warm = record(&[("w", 1.into())], Some(Duration::from_secs(60)));
    store.create(&mut warm).await.unwrap();
    let mut next = warm.clone();
    next.version = 2;
    assert!(store.save(&next, 1).await.unwrap());
    assert!(
        store
            .touch(&warm.id, Some(now() + Duration::from_secs(60)))
            .await
            .unwrap()
    );

    let writer = TestApp::new(
        SessionLayer::new(store.clone()).with_touch_after(Duration::from_secs(3600)),
        |s, _| async move {
            let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
            Ok(n.to_string())
        },
    );
    let inserter = TestApp::new(
        SessionLayer::new(store.clone()).with_touch_after(Duration::from_secs(3600)),
        |s, _| async move {
            s.insert("k", Id::random().as_str()).await?;
            Ok(String::new())
        },
    );
    let reader = TestApp::new(
        SessionLayer::new(store.clone()).with_touch_after(Duration::from_secs(3600)),
        |s, _| async move { Ok(s.get::<u64>("n").await?.unwrap_or(0).to_string()) },
    );
    let toucher = TestApp::new(
        SessionLayer::new(store.clone()).with_touch_after(Duration::ZERO),
        |s, _| async move { Ok(s.get::<u64>("n").await?.unwrap_or(0).to_string()) },
    );
    let idle = TestApp::new(SessionLayer::new(store.clone()), |_s, _| async move {
        Ok(String::new())
    });

    let (res, new_session) = meter.measure(writer.send(None)).await;
    assert_eq!(res.status, StatusCode::OK);
    let cookie = res.cookie.expect("cookie");
    let (res, read) = meter.measure(reader.send(Some(&cookie))).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "1"));
    let (res, update) = meter.measure(writer.send(Some(&cookie))).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "2"));
    let (res, insert) = meter.measure(inserter.send(Some(&cookie))).await;
    assert_eq!(res.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (res, touched) = meter.measure(toucher.send(Some(&cookie))).await;
    assert_eq!(res.status, StatusCode::OK);
    let (res, untouched) = meter.measure(idle.send(Some(&cookie))).await;
    assert_eq!(res.status, StatusCode::OK);

    for (what, counts) in [
        ("new session (update)", &new_session),
        ("read-only request", &read),
        ("update of an existing session", &update),
        ("insert into an existing session", &insert),
        ("read-only request with a due touch", &touched),
        ("request not using its session", &untouched),
    ] {
        eprintln!(
            "{what}: {} commands sent {:?}; INFO commandstats, script internals included: {:?}",
            counts.sent.len(),
            counts.sent,
            counts.stats
        );
    }
    fn sent(c: &Counts) -> Vec<&str> {
        c.sent.iter().map(String::as_str).collect()
    }
    assert_eq!(sent(&new_session), ["EVALSHA"], "new session");
    assert_eq!(sent(&read), ["GET"], "read-only request");
    assert_eq!(
        read.stats,
        BTreeMap::from([("get".to_owned(), 1)]),
        "read-only request"
    );
    assert_eq!(sent(&update), ["GET", "EVALSHA"], "changed session");
    assert_eq!(sent(&insert), ["GET", "EVALSHA"], "changed session");
    assert_eq!(sent(&touched), ["GET", "EVALSHA"], "read with a due touch");
    assert!(
        untouched.sent.is_empty(),
        "untouched session: {:?}",
        untouched.sent
    );
    assert!(
        untouched.stats.is_empty(),
        "untouched session: {:?}",
        untouched.stats
    );
    for c in [&update, &insert, &new_session] {
        let scripts = c.stats.get("evalsha").copied().unwrap_or(0)
            + c.stats.get("eval").copied().unwrap_or(0);
        assert_eq!(scripts, 1, "one script per write: {:?}", c.stats);
    }

    drop(server);
}

/// Two instances on `server`: one with a near cache whose entries live a
/// minute, one without.
async fn near_cached_and_plain(server: &RedisServer) -> (RedisStore, RedisStore) {
    let url = server.url();
    let cached = RedisStore::builder()
        .with_near_cache(100)
        .with_near_cache_ttl(Duration::from_secs(60))
        .connect(&url)
        .await
        .expect("private redis");
    let other = RedisStore::connect(&url).await.expect("private redis");
    (cached, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_cache_skips_redis_on_repeat_reads_and_drops_what_others_change() {
    let server = RedisServer::start(RedisConfig::new()).await;
    // A TTL far above the 2 s the test waits: only Redis's invalidation
    // can make another instance's write visible in time.
    let (cached, other) = near_cached_and_plain(&server).await;
    let mut meter = Meter::new(server.port).await;

    let counter = |store: &RedisStore| {
        TestApp::new(
            SessionLayer::new(store.clone()).with_touch_after(Duration::from_secs(3600)),
            |s, _| async move {
                let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
                Ok(n.to_string())
            },
        )
    };
    let reader = TestApp::new(
        SessionLayer::new(cached.clone()).with_touch_after(Duration::from_secs(3600)),
        |s, _| async move { Ok(s.get::<u64>("n").await?.unwrap_or(0).to_string()) },
    );
    let elsewhere = counter(&other);
    let here = counter(&cached);

    let cookie = elsewhere.send(None).await.cookie.expect("cookie");
    let (res, first) = meter.measure(reader.send(Some(&cookie))).await;
    assert_eq!(res.body, "1");
    assert!(
        first.sent.iter().any(|c| c == "GET"),
        "a first read goes to Redis: {:?}",
        first.sent
    );
    let (res, second) = meter.measure(reader.send(Some(&cookie))).await;
    assert_eq!(res.body, "1");
    assert!(
        second.sent.is_empty(),
        "a repeat read is served in process: {:?}",
        second.sent
    );

    // Another instance writes: Redis invalidates the cached entry.
    assert_eq!(elsewhere.send(Some(&cookie)).await.body, "2");
    let written = Instant::now();
    loop {
        let body = reader.send(Some(&cookie)).await.body;
        if body == "2" {
            break;
        }
        assert_eq!(body, "1");
        assert!(
            written.elapsed() < Duration::from_secs(2),
            "the write of another instance was not seen within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    eprintln!(
        "another instance's write seen after {:?}",
        written.elapsed()
    );
    let (res, cached_again) = meter.measure(reader.send(Some(&cookie))).await;
    assert_eq!(res.body, "2");
    assert!(cached_again.sent.is_empty(), "{:?}", cached_again.sent);

    // This instance writes: its next read sees the write at once.
    for expected in 3..=20 {
        assert_eq!(here.send(Some(&cookie)).await.body, expected.to_string());
        assert_eq!(reader.send(Some(&cookie)).await.body, expected.to_string());
    }

    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_cache_never_serves_a_revoked_session() {
    let server = RedisServer::start(RedisConfig::new()).await;
    // A TTL far above the test: a stale entry would outlive it.
    let (cached, other) = near_cached_and_plain(&server).await;
    let mut meter = Meter::new(server.port).await;
    let log_in = TestApp::new(SessionLayer::new(other.clone()), |s, _| async move {
        s.cycle_id().await?;
        s.bind_user("alice", session_core::Device::new()).await?;
        Ok(String::new())
    });
    let whoami = TestApp::new(
        SessionLayer::new(cached.clone()).with_touch_after(Duration::from_secs(3600)),
        |s, _| async move { Ok(s.user().await?.unwrap_or_default()) },
    );
    let anonymous = TestApp::new(
        SessionLayer::new(cached.clone()).with_touch_after(Duration::from_secs(3600)),
        |s, _| async move { Ok(s.get::<u64>("n").await?.unwrap_or(0).to_string()) },
    );
    let bound = log_in.send(None).await.cookie.expect("cookie");
    for _ in 0..3 {
        assert_eq!(whoami.send(Some(&bound)).await.body, "alice");
    }
    // Every read of a bound session goes to Redis ...
    let (res, read) = meter.measure(whoami.send(Some(&bound))).await;
    assert_eq!(res.body, "alice");
    assert!(
        read.sent.iter().any(|c| c == "GET"),
        "a bound session was served from the near cache: {:?}",
        read.sent
    );
    // ... while sessions bound to nobody still use the near cache.
    let free = TestApp::new(SessionLayer::new(other.clone()), |s, _| async move {
        s.insert("n", 1).await?;
        Ok(String::new())
    })
    .send(None)
    .await
    .cookie
    .expect("cookie");
    anonymous.send(Some(&free)).await;
    let (res, read) = meter.measure(anonymous.send(Some(&free))).await;
    assert_eq!(res.body, "1");
    assert!(read.sent.is_empty(), "{:?}", read.sent);

    let users = SessionLayer::new(other.clone()).user_sessions();
    assert_eq!(users.revoke_all("alice").await.expect("revoke_all"), 1);
    assert_eq!(
        whoami.send(Some(&bound)).await.body,
        "",
        "a revoked session was still signed in on an instance with a near cache"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_backend_errors_and_503_then_recovers() {
    let mut server = RedisServer::start(RedisConfig::new()).await;
    let url = server.url();
    let store = RedisStore::builder()
        .with_response_timeout(Duration::from_millis(300))
        .connect(&url)
        .await
        .expect("private redis");
    let app = TestApp::new(SessionLayer::new(store.clone()), |s, _| async move {
        let n = s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
        Ok(n.to_string())
    });
    let cookie = app.send(None).await.cookie.expect("cookie");

    server.kill();
    let started = Instant::now();
    let err = store.load(&cookie_id(&cookie)).await.unwrap_err();
    assert!(
        matches!(err, Error::Backend(_) | Error::Timeout(_)),
        "a stopped server gave {err:?}"
    );
    let res = app.send(Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // The server comes back (empty: it keeps nothing on disk) and the same
    // store works again without being rebuilt.
    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.send(None).await;
        if res.status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after restart: {}",
            res.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}

// ---- failover on a private cluster ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_keeps_sessions() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1, RedisConfig::new()).await;
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    eprintln!("private cluster up in {:?}", started.elapsed());

    let store = RedisStore::connect_cluster(cluster.urls())
        .await
        .expect("private cluster");
    let mut sessions = Vec::new();
    for i in 0..30 {
        let mut r = record(&[("i", i.into())], Some(Duration::from_secs(600)));
        store.create(&mut r).await.unwrap();
        sessions.push(r);
    }

    // The victim: the master on the first port, once its replica has every
    // write (replication is asynchronous; see the module docs).
    let victim = ports[0];
    let info = node_info(victim, "replication").await.expect("victim info");
    assert_eq!(info_field(&info, "role"), Some("master"), "{info}");
    wait_until(
        "the replica to catch up",
        Duration::from_secs(5),
        || async move {
            let Some(info) = node_info(victim, "replication").await else {
                return false;
            };
            let replica_offset = info_field(&info, "slave0")
                .and_then(|s| s.split(',').find_map(|kv| kv.strip_prefix("offset=")));
            replica_offset.is_some() && replica_offset == info_field(&info, "master_repl_offset")
        },
    )
    .await;
    let victim_index = 0;
    let killed_at = Instant::now();
    cluster.nodes[victim_index].kill(); // SIGKILL

    // The store moves on by itself: new sessions work again once a replica
    // has been promoted.
    let mut first_error = None;
    loop {
        let mut r = record(&[("after", true.into())], Some(Duration::from_secs(600)));
        // Keys on the surviving masters may never have failed: wait until
        // the keys of the victim's slots work too.
        let mut result = store.create(&mut r).await;
        for s in &sessions {
            if result.is_err() {
                break;
            }
            result = store.load(&s.id).await.map(drop);
        }
        match result {
            Ok(()) => break,
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "the store did not recover within 20 s of the master's death (first error: {first_error:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovered {:?} after killing the master (first error while failing over: {first_error:?})",
        killed_at.elapsed()
    );

    // Every session written before the crash (and replicated) is intact,
    // and compare-and-set still works on the promoted replica.
    for s in &sessions {
        assert_eq!(
            store.load(&s.id).await.unwrap().as_ref(),
            Some(s),
            "a session was lost"
        );
    }
    for s in &sessions {
        let mut next = s.clone();
        next.version += 1;
        next.data
            .insert("after".into(), serde_json::json!(true).into());
        assert!(store.save(&next, s.version).await.unwrap());
        assert!(
            !store.save(&next, s.version).await.unwrap(),
            "stale save accepted"
        );
        let mut fresh = record(&[("after", true.into())], Some(Duration::from_secs(600)));
        store.create(&mut fresh).await.unwrap();
        assert!(store.load(&fresh.id).await.unwrap().is_some());
    }
    let promoted = ports[1..].iter().copied();
    let mut masters = 0;
    for p in promoted {
        if let Some(info) = node_info(p, "replication").await {
            masters += usize::from(info_field(&info, "role") == Some("master"));
        }
    }
    assert_eq!(masters, 3, "no replica was promoted");
    eprintln!("failover test took {:?}", started.elapsed());
    drop(cluster);
    assert!(started.elapsed() < Duration::from_secs(30));
}

// ---- least privilege --------------------------------------------------------

/// The ACL rule SECURITY.md recommends for the store's user: its key prefix
/// and the commands it sends (or runs inside its scripts), nothing else.
const LEAST_PRIVILEGE: &str = "-@all +get +getrange +set +setrange +hmget +hset +hdel +del \
     +evalsha +eval +script|load +pexpireat +persist +ping";

/// What the near cache needs on top: the RESP3 handshake, tracking and the
/// TTL it reads with each cached key.
const NEAR_CACHE_EXTRA: &str = "+hello +client|tracking +client|caching +pttl";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_privilege_acl_user_is_enough() {
    least_privilege(LEAST_PRIVILEGE, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_privilege_acl_user_is_enough_for_the_near_cache() {
    least_privilege(&format!("{LEAST_PRIVILEGE} {NEAR_CACHE_EXTRA}"), 1000).await;
}

async fn least_privilege(commands: &str, near_cache: usize) {
    let url = redis_url();
    let mut admin = raw(&url).await;
    let user = format!(
        "sessions-{}",
        Id::random().as_str().replace(['-', '_'], "x")
    );
    let prefix = format!("lp-{user}:");
    let mut rule: Vec<String> = vec![
        "ACL".into(),
        "SETUSER".into(),
        user.clone(),
        "on".into(),
        ">lp-pass".into(),
        "resetkeys".into(),
        format!("~{prefix}*"),
    ];
    rule.extend(commands.split_whitespace().map(str::to_owned));
    let args: Vec<&[u8]> = rule.iter().map(|s| s.as_bytes()).collect();
    let _: () = query(&mut admin, &args).await;

    let user_url = url.replacen("redis://", &format!("redis://{user}:lp-pass@"), 1);
    let connect = || async {
        RedisStore::builder()
            .with_key_prefix(prefix.clone())
            .with_near_cache(near_cache)
            .connect(&user_url)
            .await
            .expect("connect as the least-privilege user")
    };
    let report = session_core::test_suite::run(connect).await;

    // The user can reach nothing outside its prefix.
    let mut limited = raw(&user_url).await;
    let denied: redis::RedisResult<Option<String>> = redis::cmd("GET")
        .arg("other:key")
        .query_async(&mut limited)
        .await;
    let _: () = query(&mut admin, &[b"ACL", b"DELUSER", user.as_bytes()]).await;
    report.assert_passed();
    assert!(denied.is_err(), "the user could read outside its prefix");
}

// ---- faults: paused server, crash with requests in flight -------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_redis_times_out_and_acknowledged_adds_survive_a_crash() {
    // Persistence on: every acknowledged write is on disk before the reply.
    let mut server = RedisServer::start(RedisConfig::new().with_persistence()).await;
    let url = server.url();
    let store = RedisStore::builder()
        .with_response_timeout(Duration::from_millis(300))
        .with_connection_timeout(Duration::from_millis(300))
        .connect(&url)
        .await
        .expect("private redis");
    let layer = SessionLayer::new(store.clone()).with_store_timeout(Duration::from_millis(500));
    let app = TestApp::new(layer, |s, i| async move {
        let cart = s
            .update("cart", |c: Option<Vec<usize>>| {
                let mut c = c.unwrap_or_default();
                c.push(i);
                c
            })
            .await?;
        Ok(cart.len().to_string())
    });
    let cookie = app.send(None).await.cookie.expect("cookie");

    // Paused (SIGSTOP): requests fail with 503 within the timeout bound.
    server.pause();
    let started = Instant::now();
    let res = app.send_indexed(&cookie, 1).await;
    let took = started.elapsed();
    server.resume();
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert!(
        took < Duration::from_secs(2),
        "a paused Redis held the request {took:?}"
    );
    // Resumed: the same app works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.send_indexed(&cookie, 2).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "no recovery after SIGCONT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Crash (SIGKILL) while adds are in flight: each request answers 200
    // or 503, never hangs, and every acknowledged add survives the restart.
    let mut tasks = Vec::new();
    for i in 100..160 {
        let app = app.clone();
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 - 100) * 5)).await;
            (i, app.send_indexed(&cookie, i).await.status)
        }));
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    server.kill();
    let mut acknowledged = vec![2];
    for t in tasks {
        let (i, status) = t.await.expect("request task");
        match status {
            StatusCode::OK => acknowledged.push(i),
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("request {i} answered {other} during the crash"),
        }
    }
    assert!(
        acknowledged.len() > 1,
        "no add was acknowledged before the crash"
    );
    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let cart: Vec<usize> = loop {
        match store.load(&cookie_id(&cookie)).await {
            Ok(Some(record)) => break record.data["cart"].get().unwrap(),
            Ok(None) => panic!("the session was lost in the crash"),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery after the restart: {e}"),
        }
    };
    let lost: Vec<usize> = acknowledged
        .iter()
        .copied()
        .filter(|i| !cart.contains(i))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged adds lost in the crash: {lost:?}"
    );
    drop(server);
}
