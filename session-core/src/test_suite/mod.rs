//! The conformance suite every [`SessionStore`] must pass (feature
//! `test-suite`).
//!
//! One call, [`run`], checks a store against the whole contract: the
//! store-level operations (round trip, compare-and-set, insert-only create,
//! expiry, touch, delete, large values) and the session semantics through a
//! real [`SessionLayer`] (laziness, cookies, merging of concurrent requests,
//! 50 concurrent [`Session::update`](crate::Session::update)s over three store instances, shared
//! values that follow another instance's write, expiry
//! rules, ID rotation, log-out, the per-user session index (listing,
//! revoking, expiry, the cap, no orphans, log-ins racing a revoke-all),
//! and a store that fails or hangs).
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

//!
//! The checks live in one [table](CHECKS), grouped by what they check:
//! the store's own operations, how requests use the store, merging of
//! concurrent requests, lifetimes, and failures.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::store::{Data, Record, now};
use crate::{Id, Result, SessionLayer, SessionStore};

/// Fails the check with a message unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

#[cfg(feature = "actix")]
mod actix_app;
mod app;
mod cart;
mod checks_concurrency;
mod checks_faults;
mod checks_lifetime;
mod checks_requests;
mod checks_store;
mod checks_users;
mod front_end;
mod last_writer_wins;
mod probe;
mod reply;

pub use app::TestApp;
pub use cart::{CartOutcome, assert_no_lost_updates, concurrent_cart_updates};
pub use front_end::FrontEnd;
pub use last_writer_wins::LastWriterWins;
pub use reply::TestReply;

/// The outcome of one check: `Err` says what went wrong.
type Check = std::result::Result<(), String>;

/// One check, run on its own task with the suite's stores.
type CheckFn = fn(Ctx) -> Pin<Box<dyn Future<Output = Check> + Send>>;

/// A table entry for the check that is the `Ctx` method `$name`.
macro_rules! check {
    ($name:ident) => {
        (stringify!($name), |ctx: Ctx| {
            Box::pin(async move { ctx.$name().await })
        })
    };
}

/// Every check, in the order [`run`] runs them.
const TABLE: &[(&str, CheckFn)] = &[
    // The store's own operations (checks_store.rs).
    check!(create_load_round_trip),
    check!(load_missing),
    check!(save_is_compare_and_set),
    check!(create_never_overwrites),
    check!(expired_records_are_not_loaded),
    check!(touch_extends_expiry_only),
    check!(delete),
    check!(large_value),
    // What requests cost and which cookies they get (checks_requests.rs).
    check!(untouched_request_costs_nothing),
    check!(new_session_sets_secure_cookie),
    check!(read_only_request_does_not_write),
    check!(malformed_cookie_is_never_looked_up),
    check!(unknown_id_starts_fresh_session),
    // Concurrent requests of one session (checks_concurrency.rs).
    check!(different_keys_merge),
    check!(concurrent_updates_all_land),
    check!(shared_values_see_other_instances_writes),
    // Expiry, ID rotation and log-out (checks_lifetime.rs).
    check!(absolute_lifetime_enforced_by_layer),
    check!(idle_timeout_and_touch),
    check!(persistent_cookie_follows_expiry),
    check!(cycle_id_keeps_data_retires_old_id),
    check!(destroy_deletes_and_expires_cookie),
    // The per-user session index (checks_users.rs).
    check!(user_index_primitives),
    check!(bound_sessions_are_listed),
    check!(revoke_one_others_and_all),
    check!(ended_sessions_drop_out),
    check!(sessions_per_user_are_capped),
    check!(user_index_leaves_no_orphans),
    check!(log_ins_racing_revoke_all),
    // A store that fails or hangs (checks_faults.rs).
    check!(store_down_gives_503_then_recovers),
    check!(store_hang_is_bounded_by_timeout),
    check!(undecodable_session_starts_a_fresh_one),
];

/// The names of all checks, in the order [`run`] runs them.
pub const CHECKS: &[&str] = &names::<{ TABLE.len() }>();

const fn names<const N: usize>() -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = TABLE[i].0;
        i += 1;
    }
    names
}

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

/// [module documentation](self).
pub async fn run<F, Fut, S>(make_store: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
{
    run_through(FrontEnd::Tower, make_store).await
}

/// [`run`] with the HTTP-level checks (every check that sends requests)
/// sent through `front_end`; the store-level checks are the same whatever
/// the front end.
///
/// ```
/// # #[cfg(feature = "actix")]
/// # #[tokio::main]
/// # async fn main() {
/// use session_core::test_suite::{self, FrontEnd};
/// use session_stores::MemoryStore;
///
/// let store = MemoryStore::default();
/// test_suite::run_through(FrontEnd::Actix, || {
///     let store = store.clone();
///     async move { store }
/// })
/// .await
/// .assert_passed();
/// # }
/// # #[cfg(not(feature = "actix"))]
/// # fn main() {}
/// ```
pub async fn run_through<F, Fut, S>(front_end: FrontEnd, make_store: F) -> Report
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
    for &(name, check) in TABLE {
        let ctx = Ctx {
            stores: stores.clone(),
            front_end,
        };
        let task = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(60), check(ctx))
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

/// Turns a store error into a check failure naming the operation.
fn op<T>(what: &str, r: Result<T>) -> std::result::Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

/// What every check gets: three instances of the store under test, sharing
/// one backend, and the front end to send requests through.
struct Ctx {
    stores: Arc<[Arc<dyn SessionStore>]>,
    front_end: FrontEnd,
}

impl Ctx {
    fn store(&self) -> &dyn SessionStore {
        &*self.stores[0]
    }

    /// A layer with the default settings over the first store instance.
    fn layer(&self) -> SessionLayer {
        SessionLayer::new(self.stores[0].clone())
    }

    /// An app running `f` behind `layer`, through the suite's front end.
    fn app<F, Fut>(&self, layer: SessionLayer, f: F) -> TestApp
    where
        F: Fn(crate::Session, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String>> + Send + 'static,
    {
        TestApp::new(layer, f).with_front_end(self.front_end)
    }

    /// Stores a session holding `k = "v"` and returns its cookie.
    async fn seed(&self) -> std::result::Result<String, String> {
        let mut r = record(data(&[("k", json!("v"))]), Duration::from_secs(24 * 3600));
        op("create", self.store().create(&mut r).await)?;
        Ok(format!("id={}", r.id))
    }
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

fn cookie_id(cookie: &str) -> std::result::Result<Id, String> {
    cookie
        .split_once('=')
        .and_then(|(_, v)| Id::parse(v))
        .ok_or_else(|| format!("not a session cookie: {cookie}"))
}
