//! Routing against a real PostgreSQL primary and its streaming replica.
//!
//! Start them with `eval "$(scripts/services.sh up)"`; the URLs come from
//! `PG_PRIMARY_URL` and `PG_REPLICA_URL`. An unreachable server fails the
//! tests: nothing here is skipped.
//!
//! The tests change the replica (apply delay, stopping it), so they take a
//! shared lock and never run concurrently with each other.

#![cfg(feature = "postgres")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use db_router::{DbHandle, DbRouter, FallbackReason, Role, RouterLayer};
use http::Request;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, PgExecutor, Postgres};
use test_support::postgres::{self, primary_url, replica_url};
use test_support::services;
use test_support::unique as unique_tag;
use tokio::sync::{Mutex, MutexGuard};
use tower::{ServiceBuilder, ServiceExt};

use common::{ItemsTable, app_handler};

static SERIAL: Mutex<()> = Mutex::const_new(());

async fn connect(url: &str, what: &str) -> PgPool {
    postgres::connect_shared(&format!("the PostgreSQL {what}"), url, 4).await
}

/// Direct (unrouted) pools to both servers, with the test lock held.
struct Servers {
    _serial: MutexGuard<'static, ()>,
    primary: PgPool,
    replica: PgPool,
}

async fn servers() -> Servers {
    let serial = SERIAL.lock().await;
    let primary = connect(&primary_url(), "primary").await;
    let replica = connect(&replica_url(), "replica").await;
    postgres::require_standby(&replica, &replica_url()).await;
    set_apply_delay(&replica, false).await;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS db_router_items (id bigserial PRIMARY KEY, tag text NOT NULL)",
    )
    .execute(&primary)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('db_router_items') IS NOT NULL")
            .fetch_one(&replica)
            .await
            .unwrap();
        if exists {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica does not replicate the test table"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Servers {
        _serial: serial,
        primary,
        replica,
    }
}

/// Sets the replica's `recovery_min_apply_delay` to 500 ms or 0 and waits
/// until the server uses it.
async fn set_apply_delay(replica: &PgPool, delayed: bool) {
    postgres::set_apply_delay(replica, if delayed { "500ms" } else { "0" }).await;
}

/// Puts the 500 ms apply delay on the replica and takes it off again when
/// dropped, also when the test fails.
struct ApplyDelay;

impl ApplyDelay {
    async fn on(servers: &Servers) -> Self {
        set_apply_delay(&servers.replica, true).await;
        ApplyDelay
    }
}

impl Drop for ApplyDelay {
    fn drop(&mut self) {
        // Drop cannot await: reset from a thread with its own runtime.
        let reset = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let replica = connect(&replica_url(), "replica").await;
                set_apply_delay(&replica, false).await;
            });
        });
        if reset.join().is_err() && !std::thread::panicking() {
            panic!("could not reset the replica's apply delay");
        }
    }
}

fn replica_ctl(action: &str) -> Result<(), String> {
    let status = Command::new("bash")
        .arg(services::script())
        .arg(format!("pg-replica-{action}"))
        .status()
        .map_err(|e| format!("cannot run scripts/services.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/services.sh pg-replica-{action} failed: {status}"
        ))
    }
}

/// Stops the replica; restarts it when dropped, also when the test fails.
struct StoppedReplica {
    running: bool,
}

impl StoppedReplica {
    fn stop() -> Self {
        let mut guard = StoppedReplica { running: true };
        replica_ctl("stop").unwrap();
        guard.running = false;
        guard
    }

    fn start(&mut self) {
        replica_ctl("start").unwrap();
        self.running = true;
    }
}

impl Drop for StoppedReplica {
    fn drop(&mut self) {
        if self.running {
            return;
        }
        if let Err(e) = replica_ctl("start") {
            // Panicking again while unwinding would abort the whole run.
            if std::thread::panicking() {
                eprintln!("{e}");
            } else {
                panic!("{e}");
            }
        }
    }
}

async fn insert<'e>(executor: impl PgExecutor<'e>, tag: &str) {
    sqlx::query("INSERT INTO db_router_items (tag) VALUES ($1)")
        .bind(tag)
        .execute(executor)
        .await
        .unwrap();
}

async fn count(conn: &mut PgConnection, tag: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM db_router_items WHERE tag = $1")
        .bind(tag)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn on_replica(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// A router over both servers. The timeouts are generous so that a busy
/// machine does not ban the replica; the outage test shortens them.
/// A router on the shared pair. No lag limit unless a test sets one: until
/// the router has seen the replica caught up once, its lag is the age of
/// its last replayed transaction, minutes after an idle spell, which would
/// move plain reads to the primary in the middle of a test.
fn routed(primary: &PgPool) -> db_router::RouterBuilder<Postgres> {
    DbRouter::builder(primary.clone())
        .with_max_lag(None)
        .with_replica_url(replica_url())
        .with_health_interval(Duration::from_millis(300))
        .with_probe_timeout(Duration::from_secs(3))
        .with_replica_acquire_timeout(Duration::from_secs(3))
}

/// The counter or gauge `name` with `labels` in `recorder`'s rendering.
#[cfg(feature = "metrics")]
fn sample(
    recorder: &metrics_exporter_prometheus::PrometheusRecorder,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    test_support::metrics::Scrape::parse(&recorder.handle().render()).get(name, labels)
}

/// `db_router_token_waits_total` in `recorder`: (caught up, timed out).
#[cfg(feature = "metrics")]
fn token_waits(recorder: &metrics_exporter_prometheus::PrometheusRecorder) -> (f64, f64) {
    let waits = |outcome| {
        sample(
            recorder,
            "db_router_token_waits_total",
            &[("outcome", outcome)],
        )
    };
    (waits("caught_up"), waits("timed_out"))
}

// A current-thread runtime: the metrics recorder is this thread's.
#[tokio::test]
async fn causal_tokens_read_your_writes_on_a_delayed_replica() {
    #[cfg(feature = "metrics")]
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    #[cfg(feature = "metrics")]
    let _recording = metrics::set_default_local_recorder(&recorder);
    let servers = servers().await;
    let router = routed(&servers.primary).build().await.unwrap();
    assert!(router.stats().replicas[0].healthy, "{:?}", router.stats());
    let _delay = ApplyDelay::on(&servers).await;

    const ROUNDS: usize = 8;
    let mut stale_plain_reads = 0;
    for _ in 0..ROUNDS {
        let tag = unique_tag("ryw");
        insert(router.write_pool(), &tag).await;
        let token = router.write_token().await.unwrap();
        assert!(token.position().is_some(), "PostgreSQL tokens carry an LSN");

        let mut conn = router.reader_with(Some(&token)).await.unwrap();
        assert_eq!(
            count(&mut conn, &tag).await,
            1,
            "a read with the token must see the write"
        );
        drop(conn);

        let mut conn = router.reader().await.unwrap();
        assert!(
            on_replica(&mut conn).await,
            "plain reads use the replica: {:?}",
            router.stats()
        );
        if count(&mut conn, &tag).await == 0 {
            stale_plain_reads += 1;
        }
    }
    // The same reads without the token are stale: the token is what makes
    // the reads above correct.
    assert!(
        stale_plain_reads >= ROUNDS - 1,
        "only {stale_plain_reads} of {ROUNDS} plain replica reads were stale: is the apply delay on?"
    );
    let stats = router.stats();
    assert!(
        stats.fallbacks.get(FallbackReason::TokenNotReached) >= ROUNDS as u64 - 1,
        "{stats:?}"
    );
    assert_eq!(stats.token_reads, ROUNDS as u64);

    // Waiting instead: the replica catches up within the wait and serves.
    let waiting = routed(&servers.primary)
        .with_token_wait(Duration::from_secs(3), Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    let tag = unique_tag("wait");
    insert(waiting.write_pool(), &tag).await;
    let token = waiting.write_token().await.unwrap();
    let started = Instant::now();
    let mut conn = waiting.reader_with(Some(&token)).await.unwrap();
    let waited = started.elapsed();
    assert!(
        on_replica(&mut conn).await,
        "after waiting {waited:?}, the replica serves: {:?}",
        waiting.stats()
    );
    assert_eq!(count(&mut conn, &tag).await, 1);
    assert!(
        waited >= Duration::from_millis(200),
        "it had to wait for the delay ({waited:?})"
    );
    let stats = waiting.stats();
    assert_eq!(
        (stats.token_waits, stats.token_wait_hits),
        (1, 1),
        "{stats:?}"
    );
    #[cfg(feature = "metrics")]
    assert_eq!(token_waits(&recorder), (1.0, 0.0));

    // A wait shorter than the apply delay: it times out, and the read
    // goes to the primary.
    let impatient = routed(&servers.primary)
        .with_token_wait(Duration::from_millis(50), Duration::from_millis(10))
        .build()
        .await
        .unwrap();
    insert(impatient.write_pool(), &unique_tag("impatient")).await;
    let token = impatient.write_token().await.unwrap();
    let mut conn = impatient.reader_with(Some(&token)).await.unwrap();
    assert!(!on_replica(&mut conn).await, "{:?}", impatient.stats());
    let stats = impatient.stats();
    assert_eq!(
        (stats.token_waits, stats.token_wait_timeouts),
        (1, 1),
        "{stats:?}"
    );
    #[cfg(feature = "metrics")]
    assert_eq!(token_waits(&recorder), (1.0, 1.0));

    // Lag: a write the delayed replica has not applied yet puts it behind
    // by the time since the write; 150 ms later (well before the 500 ms
    // delay ends) a 100 ms limit skips it.
    // The routers so far stop probing: the replica's gauges are the
    // next one's alone.
    drop((router, waiting, impatient));
    let strict = routed(&servers.primary)
        .with_max_lag(Some(Duration::from_millis(100)))
        .build()
        .await
        .unwrap();
    insert(strict.write_pool(), &unique_tag("lag")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    strict.check_health().await;
    let replica = &strict.stats().replicas[0];
    assert!(replica.lag_bytes.is_some_and(|b| b > 0), "{replica:?}");
    // The gauge shows the last probe's lag in bytes (read until a probe
    // is not in between the two reads).
    #[cfg(feature = "metrics")]
    test_support::wait_until(
        "the lag gauge to equal the stats",
        Duration::from_secs(5),
        || async {
            let bytes = strict.stats().replicas[0].lag_bytes;
            let gauge = sample(
                &recorder,
                "db_router_replica_lag_bytes",
                &[("replica", replica.name.as_str())],
            );
            bytes.is_some_and(|b| b > 0 && gauge == b as f64)
        },
    )
    .await;
    assert!(
        replica.lag.is_some_and(|l| l > Duration::from_millis(100)),
        "{replica:?}"
    );
    assert!(!replica.within_lag, "{replica:?}");
    let mut conn = strict.reader().await.unwrap();
    assert!(
        !on_replica(&mut conn).await,
        "a lagging replica is not used"
    );
    assert_eq!(
        strict
            .stats()
            .fallbacks
            .get(FallbackReason::ReplicasLagging),
        1
    );
}

#[tokio::test]
async fn a_stopped_replica_is_banned_and_readmitted_after_restart() {
    let servers = servers().await;
    let interval = Duration::from_millis(300);
    let probe_timeout = Duration::from_millis(500);
    let router = routed(&servers.primary)
        .with_probe_timeout(probe_timeout)
        .with_replica_acquire_timeout(probe_timeout)
        .build()
        .await
        .unwrap();
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    drop(conn);

    let mut replica = StoppedReplica::stop();
    let stopped = Instant::now();
    // The monitor alone notices within one (jittered) interval plus a probe.
    let deadline = interval.mul_f64(1.2) + probe_timeout + Duration::from_millis(300);
    while router.stats().replicas[0].healthy {
        assert!(
            stopped.elapsed() < deadline,
            "replica not banned after {:?}: {:?}",
            stopped.elapsed(),
            router.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        let mut conn = router.reader().await.expect("reads keep working");
        assert!(!on_replica(&mut conn).await, "reads come from the primary");
    }
    let stats = router.stats();
    assert_eq!(stats.replicas[0].bans, 1);
    assert!(stats.fallbacks.get(FallbackReason::ReplicasUnhealthy) >= 5);

    replica.start();
    let restarted = Instant::now();
    loop {
        let mut conn = router.reader().await.expect("reads keep working");
        if on_replica(&mut conn).await {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "the restarted replica is not used again: {:?}",
            router.stats().replicas[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = router.stats();
    assert!(stats.replicas[0].healthy);
    assert_eq!(stats.replicas[0].bans, 1);
}

#[tokio::test]
async fn readers_refuse_writes_on_the_replica_and_on_primary_fallback() {
    let servers = servers().await;
    let router = routed(&servers.primary).build().await.unwrap();

    async fn assert_refuses_write(conn: &mut PgConnection, expect_replica: bool) {
        assert_eq!(on_replica(conn).await, expect_replica);
        let err = sqlx::query("INSERT INTO db_router_items (tag) VALUES ('must-fail')")
            .execute(&mut *conn)
            .await
            .expect_err("a reader must refuse writes");
        assert!(err.to_string().contains("read-only transaction"), "{err}");
    }

    let mut conn = router.reader().await.unwrap();
    assert_refuses_write(&mut conn, true).await;

    // Fallback to the primary: a write request's reads...
    let handle = DbHandle::new(router.clone(), Role::Write, None);
    let mut conn = handle.reader().await.unwrap();
    assert_refuses_write(&mut conn, false).await;

    // ...a router whose only replica is down...
    let down = DbRouter::builder(servers.primary.clone())
        .with_replica_url("postgres://postgres@127.0.0.1:1/stateful")
        .with_probe_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    assert!(!down.stats().replicas[0].healthy);
    let mut conn = down.reader().await.unwrap();
    assert_refuses_write(&mut conn, false).await;
    assert_eq!(
        down.stats()
            .fallbacks
            .get(FallbackReason::ReplicasUnhealthy),
        1
    );

    // ...and a router without replicas.
    let single = DbRouter::builder(servers.primary.clone())
        .build()
        .await
        .unwrap();
    let mut conn = single.reader().await.unwrap();
    assert_refuses_write(&mut conn, false).await;
    let pool = single.read_pool(None).await.unwrap();
    let err = sqlx::query("DELETE FROM db_router_items WHERE tag = 'none'")
        .execute(pool)
        .await
        .expect_err("the read pool refuses writes");
    assert!(err.to_string().contains("read-only transaction"), "{err}");
}

#[tokio::test]
async fn transactions_read_and_write_on_the_primary() {
    let servers = servers().await;
    let router = routed(&servers.primary).build().await.unwrap();
    let _delay = ApplyDelay::on(&servers).await;
    let tag = unique_tag("tx");

    let mut tx = router.begin().await.unwrap();
    assert!(
        !on_replica(&mut tx).await,
        "a transaction runs on the primary"
    );
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(read_only, "off");
    insert(&mut *tx, &tag).await;
    assert_eq!(
        count(&mut tx, &tag).await,
        1,
        "reads in the transaction see its writes"
    );
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let primary_port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&servers.primary)
        .await
        .unwrap();
    assert_eq!(port, primary_port);
    tx.commit().await.unwrap();

    // The delayed replica has not applied it yet: had the transaction's
    // read gone there, it would have seen nothing.
    let mut conn = router.reader().await.unwrap();
    assert!(on_replica(&mut conn).await, "{:?}", router.stats());
    assert_eq!(count(&mut conn, &tag).await, 0);
    assert_eq!(router.stats().writes, 1);
}

/// `GET /?tag` answers `<replica|primary>:<count>`.
impl ItemsTable for Postgres {
    async fn insert(pool: &PgPool, tag: &str) {
        insert(pool, tag).await;
    }

    async fn answer(conn: &mut PoolConnection<Postgres>, tag: &str) -> String {
        let server = if on_replica(conn).await {
            "replica"
        } else {
            "primary"
        };
        format!("{server}:{}", count(conn, tag).await)
    }
}

#[tokio::test]
async fn tower_layer_carries_the_token_from_post_to_get() {
    let servers = servers().await;
    let router = routed(&servers.primary).build().await.unwrap();
    let app = ServiceBuilder::new()
        .layer(RouterLayer::new(router.clone()))
        .service_fn(app_handler::<Postgres>);
    let _delay = ApplyDelay::on(&servers).await;

    for _ in 0..3 {
        let tag = unique_tag("layer");
        let get = |cookie: Option<&str>| {
            let mut request = Request::get(format!("/?{tag}"));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            request.body(String::new()).unwrap()
        };

        let response = app.clone().oneshot(get(None)).await.unwrap();
        assert_eq!(response.body(), "replica:0", "GET reads from the replica");

        let post = Request::post("/").body(tag.clone()).unwrap();
        let response = app.clone().oneshot(post).await.unwrap();
        assert_eq!(response.body(), "created");
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
        assert!(
            set_cookie.contains(".l"),
            "the token carries an LSN: {set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_owned();

        let response = app.clone().oneshot(get(Some(&cookie))).await.unwrap();
        assert_eq!(
            response.body(),
            "primary:1",
            "the user who wrote sees the write"
        );

        let response = app.clone().oneshot(get(None)).await.unwrap();
        assert_eq!(
            response.body(),
            "replica:0",
            "without the cookie the replica is stale"
        );
    }
    let stats = router.stats();
    assert_eq!(stats.writes, 3);
    assert_eq!(stats.tokens_issued, 3);
    assert_eq!(stats.fallbacks.get(FallbackReason::TokenNotReached), 3);
}
