//! The conformance suite every [`SessionStore`] must pass (feature
//! `test-suite`).
//!
//! One call, [`run`], checks a store against the whole contract: the
//! store-level operations (round trip, compare-and-set, insert-only create,
//! expiry, touch, delete, large values) and the session semantics through a
//! real [`SessionLayer`] (laziness, cookies, merging of concurrent requests,
//! 50 concurrent [`Session::update`]s over three store instances, expiry
//! rules, ID rotation, log-out, and a store that fails or hangs).
//!
//! `make_store` is called once per instance needed; every instance it
//! returns must share the same backend (for an in-process store, return
//! clones of one store), exactly like the app instances of a fleet.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! use session_stores::MemoryStore;
//!
//! let store = MemoryStore::default();
//! let report = session_core::test_suite::run(|| {
//!     let store = store.clone();
//!     async move { store }
//! })
//! .await;
//! report.assert_passed();
//! # }
//! ```
//!
//! The suite needs a multi-threaded tokio runtime and takes a few seconds:
//! some checks wait for expiry times to pass.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::{Request, Response, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use tower::{Layer as _, Service, ServiceExt as _};

use crate::store::{Data, Record, now};
use crate::{Error, Id, Result, Session, SessionLayer, SessionStore};

/// The outcome of [`run`]: which checks passed and why the others failed.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Report {
    /// Names of the checks that passed.
    pub passed: Vec<&'static str>,
    /// Names of the checks that failed, each with what went wrong.
    pub failed: Vec<(&'static str, String)>,
}

impl Report {
    /// Whether the check called `name` failed.
    pub fn has_failed(&self, name: &str) -> bool {
        self.failed.iter().any(|(n, _)| *n == name)
    }

    /// # Panics
    ///
    /// Panics, listing every failure, unless all checks passed.
    pub fn assert_passed(&self) {
        assert!(
            self.failed.is_empty(),
            "{} of {} session store checks failed:\n{}",
            self.failed.len(),
            self.failed.len() + self.passed.len(),
            self.failed
                .iter()
                .map(|(n, why)| format!("  - {n}: {why}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The names of all checks, in the order [`run`] runs them.
pub const CHECKS: &[&str] = &[
    "create_load_round_trip",
    "load_missing",
    "save_is_compare_and_set",
    "create_never_overwrites",
    "expired_records_are_not_loaded",
    "touch_extends_expiry_only",
    "delete",
    "large_value",
    "untouched_request_costs_nothing",
    "new_session_sets_secure_cookie",
    "read_only_request_does_not_write",
    "malformed_cookie_is_never_looked_up",
    "unknown_id_starts_fresh_session",
    "different_keys_merge",
    "concurrent_updates_all_land",
    "absolute_lifetime_enforced_by_layer",
    "idle_timeout_and_touch",
    "persistent_cookie_follows_expiry",
    "cycle_id_keeps_data_retires_old_id",
    "destroy_deletes_and_expires_cookie",
    "store_down_gives_503_then_recovers",
    "store_hang_is_bounded_by_timeout",
];

/// Runs every check against stores made by `make_store`; see the
/// [module documentation](self).
pub async fn run<F, Fut, S>(make_store: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
{
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(make_store().await) as Arc<dyn SessionStore>);
    }
    let stores: Arc<[Arc<dyn SessionStore>]> = stores.into();
    let mut report = Report::default();
    for &name in CHECKS {
        let ctx = Ctx {
            stores: stores.clone(),
        };
        let task = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(60), ctx.check(name))
                .await
                .unwrap_or_else(|_| Err("did not finish within 60 s".into()))
        });
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => Err(format!("panicked: {e}")),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => report.passed.push(name),
            Err(why) => report.failed.push((name, why)),
        }
    }
    report
}

type Check = std::result::Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Turns a store error into a check failure naming the operation.
fn op<T>(what: &str, r: Result<T>) -> std::result::Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

struct Ctx {
    stores: Arc<[Arc<dyn SessionStore>]>,
}

fn data(pairs: &[(&str, serde_json::Value)]) -> Data {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.into()))
        .collect()
}

fn record(data: Data, ttl: Duration) -> Record {
    let now = now();
    Record::new(Id::random(), data, now, Some(now + ttl))
}

const HOUR: Duration = Duration::from_secs(3600);

impl Ctx {
    fn store(&self) -> &dyn SessionStore {
        &*self.stores[0]
    }

    async fn check(&self, name: &str) -> Check {
        match name {
            "create_load_round_trip" => self.create_load_round_trip().await,
            "load_missing" => self.load_missing().await,
            "save_is_compare_and_set" => self.save_is_compare_and_set().await,
            "create_never_overwrites" => self.create_never_overwrites().await,
            "expired_records_are_not_loaded" => self.expired_records_are_not_loaded().await,
            "touch_extends_expiry_only" => self.touch_extends_expiry_only().await,
            "delete" => self.delete().await,
            "large_value" => self.large_value().await,
            "untouched_request_costs_nothing" => self.untouched_request_costs_nothing().await,
            "new_session_sets_secure_cookie" => self.new_session_sets_secure_cookie().await,
            "read_only_request_does_not_write" => self.read_only_request_does_not_write().await,
            "malformed_cookie_is_never_looked_up" => {
                self.malformed_cookie_is_never_looked_up().await
            }
            "unknown_id_starts_fresh_session" => self.unknown_id_starts_fresh_session().await,
            "different_keys_merge" => self.different_keys_merge().await,
            "concurrent_updates_all_land" => self.concurrent_updates_all_land().await,
            "absolute_lifetime_enforced_by_layer" => {
                self.absolute_lifetime_enforced_by_layer().await
            }
            "idle_timeout_and_touch" => self.idle_timeout_and_touch().await,
            "persistent_cookie_follows_expiry" => self.persistent_cookie_follows_expiry().await,
            "cycle_id_keeps_data_retires_old_id" => self.cycle_id_keeps_data_retires_old_id().await,
            "destroy_deletes_and_expires_cookie" => self.destroy_deletes_and_expires_cookie().await,
            "store_down_gives_503_then_recovers" => self.store_down_gives_503_then_recovers().await,
            "store_hang_is_bounded_by_timeout" => self.store_hang_is_bounded_by_timeout().await,
            other => Err(format!("unknown check {other}")),
        }
    }

    // ---- store level -------------------------------------------------

    async fn create_load_round_trip(&self) -> Check {
        let mut r = record(
            data(&[
                ("cart", json!([{"sku": "A", "qty": 2}])),
                ("name", json!("Zoë")),
                ("n", json!(-7)),
                ("f", json!(1.25)),
            ]),
            HOUR,
        );
        op("create", self.store().create(&mut r).await)?;
        let loaded = op("load", self.store().load(&r.id).await)?;
        ensure!(
            loaded.as_ref() == Some(&r),
            "loaded {loaded:?}, created {r:?}"
        );
        // Another instance sees it too.
        let other = op("load on second instance", self.stores[1].load(&r.id).await)?;
        ensure!(
            other.as_ref() == Some(&r),
            "second instance loaded {other:?}"
        );
        Ok(())
    }

    async fn load_missing(&self) -> Check {
        let loaded = op("load", self.store().load(&Id::random()).await)?;
        ensure!(loaded.is_none(), "a random ID loaded {loaded:?}");
        Ok(())
    }

    async fn save_is_compare_and_set(&self) -> Check {
        let store = self.store();
        let mut r = record(data(&[("k", json!(0))]), HOUR);
        op("create", store.create(&mut r).await)?;
        let mut first = r.clone();
        first.version = 2;
        first.data.insert("k".into(), json!(1).into());
        ensure!(
            op("save v1->v2", store.save(&first, 1).await)?,
            "save with the current version was refused"
        );
        let mut stale = r.clone();
        stale.version = 2;
        stale.data.insert("k".into(), json!("stale").into());
        ensure!(
            !op("stale save", self.stores[1].save(&stale, 1).await)?,
            "a save expecting version 1 was accepted although version 2 is stored"
        );
        let loaded = op("load", store.load(&r.id).await)?;
        ensure!(
            loaded.as_ref() == Some(&first),
            "after a refused stale save the store holds {loaded:?}"
        );
        let mut missing = record(Data::new(), HOUR);
        missing.version = 2;
        ensure!(
            !op("save of missing", store.save(&missing, 1).await)?,
            "a save of a record that does not exist was accepted"
        );
        ensure!(
            op("load", store.load(&missing.id).await)?.is_none(),
            "a save recreated a missing record"
        );
        Ok(())
    }

    async fn create_never_overwrites(&self) -> Check {
        let store = self.store();
        let mut first = record(data(&[("owner", json!("first"))]), HOUR);
        op("create", store.create(&mut first).await)?;
        let mut second = record(data(&[("owner", json!("second"))]), HOUR);
        second.id = first.id.clone();
        op(
            "create with a taken ID",
            self.stores[1].create(&mut second).await,
        )?;
        ensure!(
            second.id != first.id,
            "create with a taken ID did not pick a fresh ID"
        );
        let a = op("load first", store.load(&first.id).await)?;
        ensure!(
            a.as_ref() == Some(&first),
            "the first record was overwritten: {a:?}"
        );
        let b = op("load second", store.load(&second.id).await)?;
        ensure!(
            b.as_ref() == Some(&second),
            "the second record is not under its new ID: {b:?}"
        );
        Ok(())
    }

    async fn expired_records_are_not_loaded(&self) -> Check {
        let store = self.store();
        let mut r = record(data(&[("k", json!(1))]), Duration::from_millis(1200));
        op("create", store.create(&mut r).await)?;
        ensure!(
            op("load", store.load(&r.id).await)?.is_some(),
            "record not loaded before its expiry"
        );
        tokio::time::sleep(Duration::from_millis(1400)).await;
        let loaded = op("load", store.load(&r.id).await)?;
        ensure!(loaded.is_none(), "expired record was loaded: {loaded:?}");
        let mut past = record(Data::new(), HOUR);
        past.expires_at = Some(now() - time::Duration::seconds(1));
        // A store may refuse or accept it, but must not hand it out.
        let _ = store.create(&mut past).await;
        let loaded = op("load", store.load(&past.id).await)?;
        ensure!(
            loaded.is_none(),
            "a record created already expired was loaded"
        );
        Ok(())
    }

    async fn touch_extends_expiry_only(&self) -> Check {
        let store = self.store();
        let mut r = record(data(&[("k", json!("v"))]), Duration::from_millis(1500));
        op("create", store.create(&mut r).await)?;
        let later = now() + HOUR;
        ensure!(
            op("touch", store.touch(&r.id, Some(later)).await)?,
            "touch of an existing record returned false"
        );
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let loaded = op("load", store.load(&r.id).await)?
            .ok_or("touched record expired at its old expiry time")?;
        ensure!(
            loaded.expires_at == Some(later),
            "expires_at {:?} after touch to {later:?}",
            loaded.expires_at
        );
        ensure!(
            loaded.version == r.version && loaded.data == r.data,
            "touch changed version or data: {loaded:?}"
        );
        ensure!(
            !op(
                "touch missing",
                store.touch(&Id::random(), Some(later)).await
            )?,
            "touch of a missing record returned true"
        );
        Ok(())
    }

    async fn delete(&self) -> Check {
        let store = self.store();
        let mut r = record(data(&[("k", json!(1))]), HOUR);
        op("create", store.create(&mut r).await)?;
        op("delete", self.stores[1].delete(&r.id).await)?;
        ensure!(
            op("load", store.load(&r.id).await)?.is_none(),
            "deleted record was loaded"
        );
        op("delete of a missing record", store.delete(&r.id).await)?;
        Ok(())
    }

    async fn large_value(&self) -> Check {
        let store = self.store();
        let blob: String = (0..256 * 1024)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut r = record(data(&[("blob", json!(blob))]), HOUR);
        match store.create(&mut r).await {
            Ok(()) => {}
            // A store with a size limit must say so clearly.
            Err(Error::TooLarge { .. }) => return Ok(()),
            Err(e) => return Err(format!("create of a 256 KiB value failed: {e}")),
        }
        let loaded = op("load", store.load(&r.id).await)?;
        ensure!(
            loaded.as_ref() == Some(&r),
            "256 KiB value did not round-trip"
        );
        Ok(())
    }

    // ---- through the layer -------------------------------------------

    /// Stores a session holding `k = "v"` and returns its cookie.
    async fn seed(&self) -> std::result::Result<String, String> {
        let mut r = record(data(&[("k", json!("v"))]), Duration::from_secs(24 * 3600));
        op("create", self.store().create(&mut r).await)?;
        Ok(format!("id={}", r.id))
    }

    async fn untouched_request_costs_nothing(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = TestApp::new(SessionLayer::new(probe.clone()), |_, _| async {
            Ok(String::new())
        });
        let existing = self.seed().await?;
        probe.reset();
        let res = app.send(Some(&existing)).await;
        ensure!(res.status == StatusCode::OK, "status {}", res.status);
        ensure!(
            probe.total() == 0,
            "untouched session made store calls: {probe:?}"
        );
        ensure!(res.cookie.is_none(), "untouched session set a cookie");
        let res = app.send(None).await;
        ensure!(
            probe.total() == 0 && res.cookie.is_none(),
            "request without cookie or session use touched the store: {probe:?}"
        );
        Ok(())
    }

    async fn new_session_sets_secure_cookie(&self) -> Check {
        let app = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("k", "v").await?;
                Ok(String::new())
            },
        );
        let res = app.send(None).await;
        let header = res.set_cookie.ok_or("no Set-Cookie for a new session")?;
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            ensure!(header.contains(attr), "{attr} missing from {header}");
        }
        let value = res.cookie.ok_or("unparsable Set-Cookie")?;
        ensure!(
            Id::parse(value.trim_start_matches("id=")).is_some(),
            "cookie value {value} is not a session ID"
        );
        Ok(())
    }

    async fn read_only_request_does_not_write(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = TestApp::new(
            SessionLayer::new(probe.clone()).with_touch_after(HOUR),
            |s, _| async move { Ok(s.get::<String>("k").await?.unwrap_or_default()) },
        );
        let cookie = self.seed().await?;
        probe.reset();
        let res = app.send(Some(&cookie)).await;
        ensure!(res.status == StatusCode::OK, "status {}", res.status);
        ensure!(
            res.body == "v",
            "read {:?}, expected the stored value",
            res.body
        );
        ensure!(
            probe.loads() == 1 && probe.writes() == 0,
            "a read-only request should cost one load and no write: {probe:?}"
        );
        ensure!(res.cookie.is_none(), "read-only request re-sent the cookie");
        Ok(())
    }

    async fn malformed_cookie_is_never_looked_up(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = TestApp::new(SessionLayer::new(probe.clone()), |s, _| async move {
            Ok(format!("{}", s.is_empty().await?))
        });
        let long = format!("id={}", "A".repeat(8000));
        for bad in [
            "id=garbage",
            "id=",
            "id=AAAAAAAAAAAAAAAAAAAAA",
            "id=AAAAAAAAAAAAAAAAAAAAAAA",
            "id=AAAAAAAAAA/AAAAAAAAAAA",
            "id=%00%01",
            long.as_str(),
        ] {
            let res = app.send(Some(bad)).await;
            ensure!(
                res.status == StatusCode::OK,
                "{bad:?} gave status {}",
                res.status
            );
            ensure!(res.body == "true", "{bad:?} did not give a fresh session");
        }
        ensure!(
            probe.total() == 0,
            "malformed cookies reached the store: {probe:?}"
        );
        Ok(())
    }

    async fn unknown_id_starts_fresh_session(&self) -> Check {
        let app = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                let was_empty = s.is_empty().await?;
                s.insert("k", 1).await?;
                Ok(format!("{was_empty}"))
            },
        );
        let planted = format!("id={}", Id::random());
        let res = app.send(Some(&planted)).await;
        ensure!(res.body == "true", "an unknown ID did not start empty");
        let cookie = res.cookie.ok_or("no cookie for the new session")?;
        ensure!(
            cookie != planted,
            "the client-chosen ID was adopted (session fixation)"
        );
        Ok(())
    }

    async fn different_keys_merge(&self) -> Check {
        // 20 requests of one session, on three instances, each loads the
        // session, waits for all the others to have loaded it too, then sets
        // its own key. Every key must be there at the end.
        const N: usize = 20;
        let barrier = Arc::new(Barrier::new(N));
        let apps: Vec<TestApp> = (0..3)
            .map(|i| {
                let barrier = barrier.clone();
                TestApp::new(SessionLayer::new(self.stores[i].clone()), move |s, i| {
                    let barrier = barrier.clone();
                    async move {
                        s.get::<usize>("n").await?;
                        barrier.wait().await;
                        s.insert(&format!("key{i}"), i).await?;
                        Ok(String::new())
                    }
                })
            })
            .collect();
        let start = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("n", 0).await?;
                Ok(String::new())
            },
        );
        let cookie = start.start_session().await?;
        let mut tasks = Vec::new();
        for i in 0..N {
            let app = apps[i % 3].clone();
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(
                async move { app.send_indexed(&cookie, i).await },
            ));
        }
        for t in tasks {
            let res = t.await.map_err(|e| e.to_string())?;
            ensure!(
                res.status == StatusCode::OK,
                "a request failed: {}",
                res.status
            );
        }
        let id = cookie_id(&cookie)?;
        let stored = op("load", self.store().load(&id).await)?.ok_or("session vanished")?;
        let missing: Vec<usize> = (0..N)
            .filter(|i| !stored.data.contains_key(&format!("key{i}")))
            .collect();
        ensure!(
            missing.is_empty(),
            "changes of {} of {N} concurrent requests to distinct keys were lost: {missing:?}",
            missing.len()
        );
        Ok(())
    }

    async fn concurrent_updates_all_land(&self) -> Check {
        const N: usize = 50;
        let layers: Vec<SessionLayer> = self
            .stores
            .iter()
            .map(|s| SessionLayer::new(s.clone()))
            .collect();
        let outcome = concurrent_cart_updates(&layers, N).await?;
        ensure!(
            outcome.items == N && outcome.distinct == N,
            "{N} concurrent updates over 3 instances left {} items ({} distinct): lost updates",
            outcome.items,
            outcome.distinct
        );
        Ok(())
    }

    async fn absolute_lifetime_enforced_by_layer(&self) -> Check {
        // The record itself is valid for an hour; only the layer's absolute
        // lifetime says it is over.
        let writer = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("k", "v").await?;
                Ok(String::new())
            },
        );
        let cookie = writer.start_session().await?;
        let reader = TestApp::new(
            SessionLayer::new(self.stores[0].clone())
                .with_absolute_lifetime(Some(Duration::from_millis(600))),
            |s, _| async move { Ok(s.get::<String>("k").await?.unwrap_or_default()) },
        );
        ensure!(
            reader.send(Some(&cookie)).await.body == "v",
            "session not readable within its absolute lifetime"
        );
        tokio::time::sleep(Duration::from_millis(800)).await;
        let body = reader.send(Some(&cookie)).await.body;
        ensure!(
            body.is_empty(),
            "session still readable after its absolute lifetime: {body:?}"
        );
        Ok(())
    }

    async fn idle_timeout_and_touch(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = TestApp::new(
            SessionLayer::new(probe.clone())
                .with_idle_timeout(Some(Duration::from_millis(1500)))
                .with_touch_after(Duration::from_millis(500)),
            |s, _| async move {
                if s.is_empty().await? {
                    s.insert("k", "v").await?;
                    return Ok("new".into());
                }
                Ok(s.get::<String>("k").await?.unwrap_or_default())
            },
        );
        let cookie = app.start_session().await?;
        probe.reset();
        // Within the throttle interval: no touch.
        ensure!(
            app.send(Some(&cookie)).await.body == "v",
            "session lost at once"
        );
        ensure!(probe.touches() == 0, "touched within the throttle interval");
        // Read-only requests every 0.9 s keep it alive past 1.5 s.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            let body = app.send(Some(&cookie)).await.body;
            ensure!(
                body == "v",
                "read-only use did not extend the idle timeout (got {body:?})"
            );
        }
        ensure!(probe.touches() >= 1, "no touch was made: {probe:?}");
        ensure!(
            probe.saves() == 0,
            "read-only requests saved data: {probe:?}"
        );
        // Idle for longer than the timeout: gone.
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let body = app.send(Some(&cookie)).await.body;
        ensure!(
            body == "new",
            "session outlived its idle timeout (got {body:?})"
        );
        Ok(())
    }

    async fn persistent_cookie_follows_expiry(&self) -> Check {
        let app = TestApp::new(
            SessionLayer::new(self.stores[0].clone())
                .with_persistent_cookie(true)
                .with_idle_timeout(Some(HOUR)),
            |s, _| async move {
                s.insert("k", "v").await?;
                Ok(String::new())
            },
        );
        let res = app.send(None).await;
        let header = res.set_cookie.ok_or("no cookie")?;
        let age: u64 = header
            .split(';')
            .find_map(|a| a.trim().strip_prefix("Max-Age="))
            .ok_or_else(|| format!("no Max-Age in {header}"))?
            .parse()
            .map_err(|e| format!("bad Max-Age in {header}: {e}"))?;
        ensure!(
            (3590..=3600).contains(&age),
            "Max-Age {age} for a 1 h idle timeout"
        );
        let session_app = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("k", "v").await?;
                Ok(String::new())
            },
        );
        let header = session_app.send(None).await.set_cookie.ok_or("no cookie")?;
        ensure!(
            !header.contains("Max-Age") && !header.contains("Expires"),
            "browser-session cookie has a lifetime: {header}"
        );
        Ok(())
    }

    async fn cycle_id_keeps_data_retires_old_id(&self) -> Check {
        let setup = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("pre", true).await?;
                Ok(String::new())
            },
        );
        let login = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("cart", vec!["A"]).await?;
                s.cycle_id().await?;
                s.insert("user", "alice").await?;
                Ok(String::new())
            },
        );
        let pre = setup.start_session().await?;
        let res = login.send(Some(&pre)).await;
        ensure!(
            res.status == StatusCode::OK,
            "log-in failed: {}",
            res.status
        );
        let new = res.cookie.ok_or("cycle_id did not send a new cookie")?;
        ensure!(new != pre, "cycle_id kept the ID");
        ensure!(
            op("load old", self.store().load(&cookie_id(&pre)?).await)?.is_none(),
            "the old ID still loads after cycle_id"
        );
        let stored = op("load new", self.store().load(&cookie_id(&new)?).await)?
            .ok_or("no record under the new ID")?;
        for key in ["pre", "cart", "user"] {
            ensure!(
                stored.data.contains_key(key),
                "{key} lost by cycle_id: {stored:?}"
            );
        }
        Ok(())
    }

    async fn destroy_deletes_and_expires_cookie(&self) -> Check {
        let app = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.destroy().await?;
                Ok(String::new())
            },
        );
        let setup = TestApp::new(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                s.insert("k", "v").await?;
                Ok(String::new())
            },
        );
        let cookie = setup.start_session().await?;
        let res = app.send(Some(&cookie)).await;
        ensure!(res.status == StatusCode::OK, "status {}", res.status);
        let header = res.set_cookie.ok_or("destroy did not remove the cookie")?;
        ensure!(
            header.contains("Max-Age=0"),
            "removal cookie lacks Max-Age=0: {header}"
        );
        ensure!(
            op("load", self.store().load(&cookie_id(&cookie)?).await)?.is_none(),
            "destroyed session still loads"
        );
        Ok(())
    }

    async fn store_down_gives_503_then_recovers(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = TestApp::new(SessionLayer::new(probe.clone()), |s, _| async move {
            s.update("n", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
            Ok(String::new())
        });
        let cookie = app.start_session().await?;
        probe.set_mode(Mode::Fail);
        let res = app.send(Some(&cookie)).await;
        ensure!(
            res.status == StatusCode::SERVICE_UNAVAILABLE,
            "store down gave {} instead of 503",
            res.status
        );
        // The store fails after the handler's change was accepted, while the
        // layer saves it: the client must not be told it worked.
        let late = {
            let probe = probe.clone();
            TestApp::new(SessionLayer::new(probe.clone()), move |s, _| {
                let probe = probe.clone();
                async move {
                    s.insert("k", "v").await?;
                    probe.set_mode(Mode::Fail);
                    Ok(String::new())
                }
            })
        };
        probe.set_mode(Mode::Normal);
        let res = late.send(Some(&cookie)).await;
        ensure!(
            res.status == StatusCode::SERVICE_UNAVAILABLE,
            "a change that could not be saved answered {} instead of 503",
            res.status
        );
        probe.set_mode(Mode::Normal);
        let res = app.send(Some(&cookie)).await;
        ensure!(res.status == StatusCode::OK, "no recovery: {}", res.status);
        let stored = op("load", self.store().load(&cookie_id(&cookie)?).await)?
            .ok_or("session lost during the outage")?;
        ensure!(
            stored.data.get("n").is_some_and(|n| *n == json!(2)),
            "after the outage n = {:?}, expected 2",
            stored.data.get("n")
        );
        Ok(())
    }

    async fn store_hang_is_bounded_by_timeout(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = TestApp::new(
            SessionLayer::new(probe.clone()).with_store_timeout(Duration::from_millis(500)),
            |s, _| async move {
                // A first read whose failure the handler ignores, then a
                // write: the request must wait for the timeout once, not
                // once per call.
                let _ = s.get::<String>("k").await;
                s.insert("k", "v").await?;
                Ok(String::new())
            },
        );
        let cookie = app.start_session().await?;
        probe.set_mode(Mode::Hang);
        let started = tokio::time::Instant::now();
        let res = app.send(Some(&cookie)).await;
        let took = started.elapsed();
        ensure!(
            res.status == StatusCode::SERVICE_UNAVAILABLE,
            "hung store gave {} instead of 503",
            res.status
        );
        ensure!(
            took < Duration::from_millis(950),
            "a hung store held the request {took:?}: more than one 500 ms timeout"
        );
        probe.set_mode(Mode::Normal);
        ensure!(
            app.send(Some(&cookie)).await.status == StatusCode::OK,
            "no recovery"
        );
        Ok(())
    }
}

/// What [`concurrent_cart_updates`] found in the cart afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CartOutcome {
    /// Items in the stored cart.
    pub items: usize,
    /// Distinct items among them.
    pub distinct: usize,
}

/// The concurrency acceptance test: `n` requests of one session, spread
/// round-robin over `layers` (one per app instance, each with its own store
/// connection), first all read the cart, then each adds its own item with
/// [`Session::update`]. Without lost updates the cart ends with `n`
/// distinct items.
///
/// Each layer's attempt limit is raised to `n + 1`, which always suffices:
/// every failed attempt means another request's save succeeded.
///
/// # Errors
///
/// A request that failed, with its status and message.
pub async fn concurrent_cart_updates(
    layers: &[SessionLayer],
    n: usize,
) -> std::result::Result<CartOutcome, String> {
    let barrier = Arc::new(Barrier::new(n));
    let attempts = u32::try_from(n + 1).unwrap_or(u32::MAX);
    let apps: Vec<TestApp> = layers
        .iter()
        .map(|layer| {
            let barrier = barrier.clone();
            TestApp::new(layer.clone(), move |s, i| {
                let barrier = barrier.clone();
                async move {
                    s.get::<Vec<usize>>("cart").await?;
                    barrier.wait().await;
                    let cart = s
                        .update("cart", |cart: Option<Vec<usize>>| {
                            let mut cart = cart.unwrap_or_default();
                            cart.push(i);
                            cart
                        })
                        .await?;
                    Ok(cart.len().to_string())
                }
            })
            .with_max_attempts(attempts)
        })
        .collect();
    let first = apps.first().ok_or("no layer given")?;
    let start = TestApp::new(first.layer.clone(), |s, _| async move {
        s.insert("cart", Vec::<usize>::new()).await?;
        Ok(String::new())
    });
    let cookie = start.start_session().await?;
    let mut tasks = Vec::new();
    for i in 0..n {
        let app = apps[i % apps.len()].clone();
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(
            async move { app.send_indexed(&cookie, i).await },
        ));
    }
    for t in tasks {
        let res = t.await.map_err(|e| e.to_string())?;
        ensure!(
            res.status == StatusCode::OK,
            "an update failed with {}: {}",
            res.status,
            res.body
        );
    }
    let reader = TestApp::new(first.layer.clone(), |s, _| async move {
        let cart = s.get::<Vec<usize>>("cart").await?.unwrap_or_default();
        Ok(serde_json::to_string(&cart)?)
    });
    let res = reader.send(Some(&cookie)).await;
    ensure!(
        res.status == StatusCode::OK,
        "reading the cart failed: {}",
        res.body
    );
    let cart: Vec<usize> = serde_json::from_str(&res.body).map_err(|e| e.to_string())?;
    let distinct: BTreeSet<usize> = cart.iter().copied().collect();
    Ok(CartOutcome {
        items: cart.len(),
        distinct: distinct.len(),
    })
}

/// The concurrency acceptance with its counter-proof: runs
/// [`concurrent_cart_updates`] with `n` requests over three stores from
/// `make_store` (each behind `layer(store)`) and asserts that every update
/// landed, then runs the same over the stores wrapped in [`LastWriterWins`]
/// and asserts that updates were lost there, which shows the check can
/// fail. Returns the items kept by the last-writer-wins run.
///
/// # Panics
///
/// If an update was lost, a request failed, or the last-writer-wins run
/// lost nothing.
pub async fn assert_no_lost_updates<F, Fut, S>(
    make_store: F,
    n: usize,
    layer: fn(Arc<dyn SessionStore>) -> SessionLayer,
) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
{
    let mut layers = Vec::new();
    let mut broken = Vec::new();
    for _ in 0..3 {
        layers.push(layer(Arc::new(make_store().await)));
        broken.push(layer(Arc::new(LastWriterWins(make_store().await))));
    }
    let started = tokio::time::Instant::now();
    let outcome = concurrent_cart_updates(&layers, n)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tracing::info!(n, took = ?started.elapsed(), "concurrent updates over 3 instances");
    assert_eq!(
        (outcome.items, outcome.distinct),
        (n, n),
        "{n} concurrent updates over 3 store instances lost updates"
    );
    let lww = concurrent_cart_updates(&broken, n)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lww.distinct < n,
        "a last-writer-wins store kept all {n} items: the check cannot see lost updates"
    );
    lww.distinct
}

/// A deliberately broken wrapper: its `save` ignores the expected version
/// (it reads the current one and saves against that), as a plain `SET` or
/// `PutItem` would. Tests run their concurrency checks on it to show that
/// they catch lost updates.
#[derive(Debug, Clone)]
pub struct LastWriterWins<S>(pub S);

#[async_trait]
impl<S: SessionStore> SessionStore for LastWriterWins<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.0.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn save(&self, record: &Record, _expected_version: u64) -> Result<bool> {
        let Some(current) = self.0.load(&record.id).await? else {
            return Ok(false);
        };
        self.0.save(record, current.version).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.0.touch(id, expires_at).await
    }
}

fn cookie_id(cookie: &str) -> std::result::Result<Id, String> {
    cookie
        .split_once('=')
        .and_then(|(_, v)| Id::parse(v))
        .ok_or_else(|| format!("not a session cookie: {cookie}"))
}

// ---- a minimal app around the layer ---------------------------------

type Handler = Arc<
    dyn Fn(Session, usize) -> std::pin::Pin<Box<dyn Future<Output = Result<String>> + Send>>
        + Send
        + Sync,
>;

/// A minimal app around a [`SessionLayer`] for store tests: each request
/// runs one async handler with the request's [`Session`] and an index.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use session_core::SessionLayer;
/// use session_core::test_suite::TestApp;
///
/// let app = TestApp::new(
///     SessionLayer::new(session_stores::MemoryStore::default()),
///     |session, _index| async move {
///         let n = session.update("n", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
///         Ok(n.to_string())
///     },
/// );
/// let first = app.send(None).await;
/// let second = app.send(first.cookie.as_deref()).await;
/// assert_eq!(second.body, "2");
/// # }
/// ```
#[derive(Clone)]
pub struct TestApp {
    layer: SessionLayer,
    handler: Handler,
}

impl fmt::Debug for TestApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestApp")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// A response from a [`TestApp`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestReply {
    /// The status: a handler's error gives [`Error::status`].
    pub status: StatusCode,
    /// The handler's output, or the error message.
    pub body: String,
    /// The raw `Set-Cookie` header.
    pub set_cookie: Option<String>,
    /// `name=value` from it, as a client would send it back.
    pub cookie: Option<String>,
}

impl TestApp {
    /// An app running `f` behind `layer` (with a generous attempt limit
    /// of 1000 for concurrent saves).
    pub fn new<F, Fut>(layer: SessionLayer, f: F) -> Self
    where
        F: Fn(Session, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        TestApp {
            layer: layer.with_max_attempts(1000),
            handler: Arc::new(move |s, i| Box::pin(f(s, i))),
        }
    }

    /// Overrides the layer's attempt limit.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.layer = self.layer.with_max_attempts(attempts);
        self
    }

    fn service(
        &self,
        index: usize,
    ) -> impl Service<
        Request<String>,
        Response = Response<String>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + use<> {
        let handler = self.handler.clone();
        self.layer
            .clone()
            .layer(tower::service_fn(move |req: Request<String>| {
                let handler = handler.clone();
                async move {
                    let session = req
                        .extensions()
                        .get::<Session>()
                        .cloned()
                        .expect("the layer adds a session");
                    let res = match handler(session, index).await {
                        Ok(body) => Response::new(body),
                        Err(e) => {
                            let mut res = Response::new(e.to_string());
                            *res.status_mut() = e.status();
                            res
                        }
                    };
                    Ok::<_, Infallible>(res)
                }
            }))
    }

    /// One request, with `cookie` (`name=value`) if given; the handler's
    /// index is 0.
    pub async fn send(&self, cookie: Option<&str>) -> TestReply {
        self.send_with(cookie, 0).await
    }

    /// One request with `cookie`, telling the handler `index`.
    pub async fn send_indexed(&self, cookie: &str, index: usize) -> TestReply {
        self.send_with(Some(cookie), index).await
    }

    async fn send_with(&self, cookie: Option<&str>, index: usize) -> TestReply {
        let mut req = Request::new(String::new());
        if let Some(c) = cookie {
            req.headers_mut()
                .insert(http::header::COOKIE, c.parse().expect("cookie header"));
        }
        let res = self
            .service(index)
            .oneshot(req)
            .await
            .unwrap_or_else(|e: Infallible| match e {});
        let set_cookie = res
            .headers()
            .get(http::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        TestReply {
            status: res.status(),
            cookie: set_cookie
                .as_deref()
                .and_then(|h| h.split(';').next())
                .map(str::to_owned),
            set_cookie,
            body: res.into_body(),
        }
    }

    /// Sends one request without a cookie and returns the cookie of the
    /// session it created.
    ///
    /// # Errors
    ///
    /// The request failed or set no cookie.
    pub async fn start_session(&self) -> std::result::Result<String, String> {
        let res = self.send(None).await;
        ensure!(
            res.status == StatusCode::OK,
            "creating a session failed: {} {}",
            res.status,
            res.body
        );
        res.cookie.ok_or_else(|| "no session cookie was set".into())
    }
}

// ---- a store wrapper that counts calls and injects faults -----------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal = 0,
    Fail = 1,
    Hang = 2,
}

#[derive(Clone)]
struct Probe {
    inner: Arc<dyn SessionStore>,
    counts: Arc<[AtomicUsize; 5]>,
    mode: Arc<AtomicU8>,
}

const CREATE: usize = 0;
const LOAD: usize = 1;
const SAVE: usize = 2;
const DELETE: usize = 3;
const TOUCH: usize = 4;

impl Probe {
    fn new(inner: Arc<dyn SessionStore>) -> Self {
        Probe {
            inner,
            counts: Arc::new(Default::default()),
            mode: Arc::new(AtomicU8::new(Mode::Normal as u8)),
        }
    }

    fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::SeqCst);
        }
    }

    fn count(&self, i: usize) -> usize {
        self.counts[i].load(Ordering::SeqCst)
    }

    fn total(&self) -> usize {
        (0..5).map(|i| self.count(i)).sum()
    }

    fn loads(&self) -> usize {
        self.count(LOAD)
    }

    fn saves(&self) -> usize {
        self.count(SAVE)
    }

    fn touches(&self) -> usize {
        self.count(TOUCH)
    }

    fn writes(&self) -> usize {
        self.count(CREATE) + self.count(SAVE) + self.count(DELETE) + self.count(TOUCH)
    }

    fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    async fn enter(&self, op: usize) -> Result<()> {
        self.counts[op].fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            1 => Err(Error::backend("injected failure: store down")),
            2 => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "create={} load={} save={} delete={} touch={}",
            self.count(CREATE),
            self.count(LOAD),
            self.count(SAVE),
            self.count(DELETE),
            self.count(TOUCH)
        )
    }
}

#[async_trait]
impl SessionStore for Probe {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.enter(CREATE).await?;
        self.inner.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.enter(LOAD).await?;
        self.inner.load(id).await
    }
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        self.enter(SAVE).await?;
        self.inner.save(record, expected_version).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.enter(DELETE).await?;
        self.inner.delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.enter(TOUCH).await?;
        self.inner.touch(id, expires_at).await
    }
}
