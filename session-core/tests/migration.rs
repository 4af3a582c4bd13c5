//! Moving sessions between stores (`SessionLayer::with_migration`) with
//! the memory store: both phases, the move racing saves on the old copy,
//! a move left half done, log-out and log-in during a move, sealed
//! cookies moving into a server-side store, and listing and revoking a
//! user's sessions wherever they are.
#![cfg(feature = "axum")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use session_core::store::Record;
use session_core::{
    Device, Id, Migration, MigrationPhase, Session, SessionLayer, SessionStore, async_trait,
};
use session_stores::cookie::Key;
use session_stores::{CookieStore, MemoryStore};
use time::OffsetDateTime;
use tower::ServiceExt as _;

async fn add(session: Session, Path(item): Path<String>) -> Result<String, session_core::Error> {
    let cart = session
        .update("cart", |cart: Option<Vec<String>>| {
            let mut cart = cart.unwrap_or_default();
            cart.push(item.clone());
            cart
        })
        .await?;
    Ok(cart.len().to_string())
}

async fn cart(session: Session) -> Result<String, session_core::Error> {
    let cart: Vec<String> = session.get("cart").await?.unwrap_or_default();
    Ok(cart.join(","))
}

async fn login(session: Session) -> Result<(), session_core::Error> {
    session.cycle_id().await
}

async fn logout(session: Session) -> Result<(), session_core::Error> {
    session.destroy().await
}

async fn bind(session: Session, Path(user): Path<String>) -> Result<(), session_core::Error> {
    session.cycle_id().await?;
    session
        .bind_user(user, Device::new().with_user_agent("test"))
        .await
}

async fn whoami(session: Session) -> Result<String, session_core::Error> {
    Ok(session.user().await?.unwrap_or_default())
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/add/{item}", post(add))
        .route("/cart", get(cart))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/bind/{user}", post(bind))
        .route("/user", get(whoami))
        .layer(layer.with_secure(false))
}

/// A response: status, the session cookie's new value (empty: removed),
/// body.
struct Reply {
    status: StatusCode,
    cookie: Option<String>,
    body: String,
}

async fn call(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        req = req.header("cookie", format!("id={cookie}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = res.headers().get("set-cookie").map(|v| {
        let v = v.to_str().unwrap();
        let first = v.split(';').next().unwrap();
        first.strip_prefix("id=").unwrap().to_owned()
    });
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Adds `item` and returns the session cookie to use next.
async fn add_item(app: &Router, cookie: Option<&str>, item: &str) -> String {
    let reply = call(app, "POST", &format!("/add/{item}"), cookie).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
        .cookie
        .or(cookie.map(str::to_owned))
        .expect("a session cookie")
}

async fn cart_of(app: &Router, cookie: &str) -> String {
    let reply = call(app, "GET", "/cart", Some(cookie)).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

fn id(cookie: &str) -> Id {
    Id::parse(cookie).expect("an ID cookie")
}

fn migrating(new: &MemoryStore, old: &MemoryStore, phase: MigrationPhase) -> Router {
    app(migrating_layer(new, old, phase))
}

fn migrating_layer(new: &MemoryStore, old: &MemoryStore, phase: MigrationPhase) -> SessionLayer {
    SessionLayer::new(new.clone())
        .with_migration(Migration::from_store(old.clone()).with_phase(phase))
}

/// Logs the session of `cookie` (a new one if `None`) in as `user`
/// (`cycle_id`, then `bind_user`); returns the session cookie to use next.
async fn log_in(app: &Router, cookie: Option<&str>, user: &str) -> String {
    let reply = call(app, "POST", &format!("/bind/{user}"), cookie).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
        .cookie
        .or(cookie.map(str::to_owned))
        .expect("a session cookie")
}

/// The user the session of `cookie` is bound to; empty when anonymous.
async fn user_of(app: &Router, cookie: &str) -> String {
    let reply = call(app, "GET", "/user", Some(cookie)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// How many live sessions `layer` lists for `user`.
async fn listed(layer: &SessionLayer, user: &str) -> usize {
    layer.user_sessions().list(user).await.unwrap().len()
}

#[tokio::test]
async fn phase_one_serves_old_sessions_and_keeps_everything_in_the_old_store() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before = app(SessionLayer::new(old.clone()));
    let phase1 = migrating(&new, &old, MigrationPhase::ReadBoth);

    let cookie = add_item(&before, None, "a").await;
    assert_eq!(add_item(&phase1, Some(&cookie), "b").await, cookie);
    // An instance still on the old store alone sees the save.
    assert_eq!(cart_of(&before, &cookie).await, "a,b");

    // New sessions go to the old store too, so the old instances know them.
    let fresh = add_item(&phase1, None, "c").await;
    assert_eq!(cart_of(&before, &fresh).await, "c");
    assert!(new.load(&id(&cookie)).await.unwrap().is_none());
    assert!(new.load(&id(&fresh)).await.unwrap().is_none());

    // Log-in keeps the session in the old store; log-out removes it.
    let reply = call(&phase1, "POST", "/login", Some(&fresh)).await;
    let cycled = reply.cookie.expect("a new ID");
    assert_ne!(cycled, fresh);
    assert_eq!(cart_of(&before, &cycled).await, "c");
    assert!(old.load(&id(&fresh)).await.unwrap().is_none());
    call(&phase1, "POST", "/logout", Some(&cycled)).await;
    assert!(old.load(&id(&cycled)).await.unwrap().is_none());
}

#[tokio::test]
async fn phase_two_moves_a_session_under_its_id_and_leaves_a_marker() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before = app(SessionLayer::new(old.clone()));
    let phase1 = migrating(&new, &old, MigrationPhase::ReadBoth);
    let phase2 = migrating(&new, &old, MigrationPhase::Move);

    let cookie = add_item(&before, None, "a").await;
    let stored = old.load(&id(&cookie)).await.unwrap().unwrap();

    // A read moves it; the cookie stays the same.
    let reply = call(&phase2, "GET", "/cart", Some(&cookie)).await;
    assert_eq!((reply.body.as_str(), reply.cookie), ("a", None));
    let moved = new.load(&id(&cookie)).await.unwrap().expect("moved");
    assert_eq!(moved.data, stored.data);
    assert_eq!(moved.created_at, stored.created_at);
    assert_eq!(moved.version, stored.version + 2);
    let marker = old.load(&id(&cookie)).await.unwrap().expect("a marker");
    assert!(Migration::is_moved_marker(&marker));
    assert!(!Migration::is_moved_marker(&moved));
    assert_eq!(marker.version, stored.version + 1);

    // Both phases now use the moved copy and write it there.
    assert_eq!(add_item(&phase1, Some(&cookie), "b").await, cookie);
    assert_eq!(add_item(&phase2, Some(&cookie), "c").await, cookie);
    assert_eq!(cart_of(&phase1, &cookie).await, "a,b,c");
    let marker_now = old.load(&id(&cookie)).await.unwrap().unwrap();
    assert_eq!(marker_now, marker, "the marker is never written again");

    // New sessions and log-ins go to the new store.
    let fresh = add_item(&phase2, None, "d").await;
    assert!(new.load(&id(&fresh)).await.unwrap().is_some());
    assert!(old.load(&id(&fresh)).await.unwrap().is_none());
    let other = add_item(&phase1, None, "e").await;
    let reply = call(&phase2, "POST", "/login", Some(&other)).await;
    let cycled = reply.cookie.expect("a new ID");
    assert!(new.load(&id(&cycled)).await.unwrap().is_some());
    assert!(old.load(&id(&other)).await.unwrap().is_none());
    assert_eq!(cart_of(&phase1, &cycled).await, "e");

    // Log-out removes the copy and the marker.
    call(&phase2, "POST", "/logout", Some(&cookie)).await;
    assert!(new.load(&id(&cookie)).await.unwrap().is_none());
    assert!(old.load(&id(&cookie)).await.unwrap().is_none());
    assert_eq!(cart_of(&phase1, &cookie).await, "");
}

/// Many sessions, each hit at once by adds through phase-1 and phase-2
/// instances while it still sits in the old store: every acknowledged add
/// is in the cart, every cart read is a prefix-monotone count, and each
/// session ends in exactly one store (the old one holds a marker).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moves_racing_saves_on_the_old_copy_lose_no_update() {
    const SESSIONS: usize = 24;
    const ADDS: usize = 12;
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before = app(SessionLayer::new(old.clone()));
    let phase1 = migrating(&new, &old, MigrationPhase::ReadBoth);
    let phase2 = migrating(&new, &old, MigrationPhase::Move);

    let mut cookies = Vec::new();
    for s in 0..SESSIONS {
        cookies.push(add_item(&before, None, &format!("s{s}-0")).await);
    }
    let mut tasks = Vec::new();
    for (s, cookie) in cookies.iter().enumerate() {
        for i in 1..=ADDS {
            let app = if (s + i) % 2 == 0 { &phase1 } else { &phase2 }.clone();
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(async move {
                let reply = call(&app, "POST", &format!("/add/s{s}-{i}"), Some(&cookie)).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                assert_eq!(reply.cookie, None, "the session keeps its ID");
                let seen = cart_of(&app, &cookie).await;
                (s, i, reply.body.parse::<usize>().unwrap(), seen)
            }));
        }
    }
    let mut counts = vec![Vec::new(); SESSIONS];
    for task in tasks {
        let (s, i, len, seen) = task.await.unwrap();
        // The cart read after an acknowledged add holds it.
        assert!(
            seen.split(',').any(|item| item == format!("s{s}-{i}")),
            "{seen}"
        );
        counts[s].push(len);
    }
    for (s, cookie) in cookies.iter().enumerate() {
        let mut lens = counts[s].clone();
        lens.sort_unstable();
        // Each add saw a distinct cart length: no add overwrote another.
        assert_eq!(lens, (2..=ADDS + 1).collect::<Vec<_>>(), "session {s}");
        let cart = cart_of(&phase1, cookie).await;
        let mut items: Vec<&str> = cart.split(',').collect();
        assert_eq!(items.len(), ADDS + 1, "{cart}");
        items.sort_unstable();
        items.dedup();
        assert_eq!(items.len(), ADDS + 1, "no add applied twice: {cart}");

        let in_new = new.load(&id(cookie)).await.unwrap();
        let in_old = old.load(&id(cookie)).await.unwrap();
        match (in_new, in_old) {
            (Some(copy), Some(marker)) => {
                assert!(Migration::is_moved_marker(&marker));
                assert!(marker.version < copy.version);
            }
            // Only phase-1 instances touched it: still in the old store.
            (None, Some(record)) => assert!(!Migration::is_moved_marker(&record)),
            other => panic!("session {s} is in neither store: {other:?}"),
        }
    }
}

/// A new store whose writes fail while `failing` is set.
#[derive(Debug, Clone)]
struct Flaky {
    store: MemoryStore,
    failing: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> session_core::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(session_core::Error::backend("the new store is down"));
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn create(&self, record: &mut Record) -> session_core::Result<()> {
        self.check()?;
        self.store.create(record).await
    }
    async fn load(&self, id: &Id) -> session_core::Result<Option<Record>> {
        self.store.load(id).await
    }
    async fn save(&self, record: &Record, expected: u64) -> session_core::Result<bool> {
        self.check()?;
        self.store.save(record, expected).await
    }
    async fn delete(&self, id: &Id) -> session_core::Result<()> {
        self.store.delete(id).await
    }
    async fn touch(&self, id: &Id, at: Option<OffsetDateTime>) -> session_core::Result<bool> {
        self.store.touch(id, at).await
    }
}

#[tokio::test]
async fn a_move_left_half_done_is_completed_by_the_next_reader() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let flaky = Flaky {
        store: new.clone(),
        failing: Arc::new(AtomicBool::new(true)),
    };
    let before = app(SessionLayer::new(old.clone()));
    let phase2 = app(SessionLayer::new(flaky.clone())
        .with_migration(Migration::from_store(old.clone()).with_phase(MigrationPhase::Move)));
    let phase1 = migrating(&new, &old, MigrationPhase::ReadBoth);

    let cookie = add_item(&before, None, "a").await;
    // The marker is written, the copy is not: the request fails.
    let reply = call(&phase2, "POST", "/add/b", Some(&cookie)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let marker = old.load(&id(&cookie)).await.unwrap().unwrap();
    assert!(Migration::is_moved_marker(&marker));
    assert!(new.load(&id(&cookie)).await.unwrap().is_none());

    // A phase-1 reader completes the move; the marker is never served.
    assert_eq!(add_item(&phase1, Some(&cookie), "c").await, cookie);
    assert_eq!(cart_of(&phase1, &cookie).await, "a,c");
    assert!(new.load(&id(&cookie)).await.unwrap().is_some());
    flaky.failing.store(false, Ordering::SeqCst);
    assert_eq!(cart_of(&phase2, &cookie).await, "a,c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_out_racing_a_move_leaves_no_session_behind() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before = app(SessionLayer::new(old.clone()));
    let phase2 = migrating(&new, &old, MigrationPhase::Move);
    for round in 0..40 {
        let cookie = add_item(&before, None, &format!("r{round}")).await;
        let reader = {
            let (app, cookie) = (phase2.clone(), cookie.clone());
            tokio::spawn(async move { call(&app, "GET", "/cart", Some(&cookie)).await })
        };
        let out = call(&phase2, "POST", "/logout", Some(&cookie)).await;
        assert_eq!(out.status, StatusCode::OK);
        assert_eq!(reader.await.unwrap().status, StatusCode::OK);
        assert!(
            new.load(&id(&cookie)).await.unwrap().is_none(),
            "round {round}"
        );
        assert!(
            old.load(&id(&cookie)).await.unwrap().is_none(),
            "round {round}"
        );
    }
}

fn cookie_store() -> CookieStore {
    CookieStore::new(Key::from_bytes([7; 32]))
}

#[tokio::test]
async fn sealed_cookies_stay_sealed_in_phase_one_and_move_in_phase_two() {
    let new = MemoryStore::default();
    let before = app(SessionLayer::client_side(cookie_store()));
    let layer = |phase| {
        app(SessionLayer::new(new.clone())
            .with_migration(Migration::from_cookie(cookie_store()).with_phase(phase)))
    };
    let (phase1, phase2) = (layer(MigrationPhase::ReadBoth), layer(MigrationPhase::Move));

    let sealed = add_item(&before, None, "a").await;
    assert!(Id::parse(&sealed).is_none());
    // Phase 1 keeps issuing sealed cookies, which old instances open.
    let sealed = add_item(&phase1, Some(&sealed), "b").await;
    assert!(Id::parse(&sealed).is_none());
    assert_eq!(cart_of(&before, &sealed).await, "a,b");
    let fresh = add_item(&phase1, None, "x").await;
    assert_eq!(cart_of(&before, &fresh).await, "x");

    // Phase 2: the session moves into the store and the client gets its ID.
    let reply = call(&phase2, "GET", "/cart", Some(&sealed)).await;
    assert_eq!(reply.body, "a,b");
    let moved = reply.cookie.expect("an ID cookie");
    let record = new.load(&id(&moved)).await.unwrap().expect("moved");
    assert_eq!(record.data.len(), 1);
    assert_eq!(add_item(&phase1, Some(&moved), "c").await, moved);

    // A request still carrying the sealed cookie uses the moved session
    // (in either phase) instead of the stale copy in the cookie.
    let reply = call(&phase1, "POST", "/add/d", Some(&sealed)).await;
    assert_eq!(reply.cookie.as_deref(), Some(moved.as_str()));
    assert_eq!(cart_of(&phase2, &sealed).await, "a,b,c,d");

    // New sessions get ID cookies in phase 2.
    let fresh = add_item(&phase2, None, "e").await;
    assert!(new.load(&id(&fresh)).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_sealed_cookie_move_it_once() {
    let new = MemoryStore::default();
    let before = app(SessionLayer::client_side(cookie_store()));
    let phase2 = app(SessionLayer::new(new.clone())
        .with_migration(Migration::from_cookie(cookie_store()).with_phase(MigrationPhase::Move)));
    for round in 0..10 {
        let sealed = add_item(&before, None, "a").await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (app, sealed) = (phase2.clone(), sealed.clone());
                tokio::spawn(async move {
                    let reply = call(&app, "POST", &format!("/add/{i}"), Some(&sealed)).await;
                    assert_eq!(reply.status, StatusCode::OK);
                    reply.cookie.expect("an ID cookie")
                })
            })
            .collect();
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1, "round {round}: one session, one ID");
        let cart = cart_of(&phase2, &ids[0]).await;
        assert_eq!(cart.split(',').count(), 9, "round {round}: {cart}");
    }
}

#[test]
#[should_panic(expected = "with_migration needs a layer built by SessionLayer::new")]
fn a_client_side_layer_cannot_migrate() {
    let _ = SessionLayer::client_side(cookie_store())
        .with_migration(Migration::from_store(MemoryStore::default()));
}

/// Users logged in before the migration are indexed in the old store only:
/// both phases list them and revoke-all ends them, whether their session
/// is still in the old store or has moved.
#[tokio::test]
async fn sessions_bound_before_the_migration_are_listed_and_revoked_in_both_phases() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before = SessionLayer::new(old.clone());
    let phase1 = migrating_layer(&new, &old, MigrationPhase::ReadBoth);
    let phase2 = migrating_layer(&new, &old, MigrationPhase::Move);
    let apps = [
        app(before.clone()),
        app(phase1.clone()),
        app(phase2.clone()),
    ];
    let [before_app, phase1_app, phase2_app] = &apps;

    let alice = log_in(before_app, None, "alice").await;
    let bob = log_in(before_app, None, "bob").await;
    let carol = log_in(before_app, None, "carol").await;
    for layer in [&phase1, &phase2] {
        for user in ["alice", "bob", "carol"] {
            assert_eq!(listed(layer, user).await, 1, "{user}");
        }
    }
    // Listing moves nothing.
    assert!(new.load(&id(&alice)).await.unwrap().is_none());
    assert_eq!(user_of(phase1_app, &alice).await, "alice");

    // Phase 1 revokes a session of the old store.
    assert_eq!(phase1.user_sessions().revoke_all("alice").await.unwrap(), 1);
    // Phase 2 revokes one still in the old store.
    assert_eq!(phase2.user_sessions().revoke_all("bob").await.unwrap(), 1);
    // Phase 2 moves one; both phases list it once, and revoke it.
    assert_eq!(user_of(phase2_app, &carol).await, "carol");
    assert!(new.load(&id(&carol)).await.unwrap().is_some());
    for layer in [&phase1, &phase2] {
        assert_eq!(listed(layer, "carol").await, 1);
    }
    assert_eq!(phase2.user_sessions().revoke_all("carol").await.unwrap(), 1);

    for (cookie, user) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        for app in &apps {
            assert_eq!(user_of(app, cookie).await, "", "{user}: anonymous");
        }
        assert!(old.load(&id(cookie)).await.unwrap().is_none(), "{user}");
        assert!(new.load(&id(cookie)).await.unwrap().is_none(), "{user}");
        for layer in [&before, &phase1, &phase2] {
            assert_eq!(listed(layer, user).await, 0, "{user}");
        }
    }
}

/// A log-in during phase 1 keeps its session in the old store: it is
/// listed and revocable by phase 1, phase 2, and instances of the old
/// configuration (or a rollback to it).
#[tokio::test]
async fn sessions_bound_during_phase_one_are_listed_and_revocable() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before = SessionLayer::new(old.clone());
    let phase1 = migrating_layer(&new, &old, MigrationPhase::ReadBoth);
    let phase2 = migrating_layer(&new, &old, MigrationPhase::Move);
    let (before_app, phase1_app) = (app(before.clone()), app(phase1.clone()));

    let dave = log_in(&phase1_app, None, "dave").await;
    assert!(old.load(&id(&dave)).await.unwrap().is_some());
    assert!(new.load(&id(&dave)).await.unwrap().is_none());
    for layer in [&before, &phase1, &phase2] {
        assert_eq!(listed(layer, "dave").await, 1);
    }
    // Logging in again (a new ID) keeps it listed once.
    let dave = log_in(&phase1_app, Some(&dave), "dave").await;
    let sessions = phase1.user_sessions().list("dave").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(
        phase1
            .user_sessions()
            .revoke("dave", &sessions[0].handle)
            .await
            .unwrap()
    );
    assert_eq!(user_of(&phase1_app, &dave).await, "");
    assert_eq!(user_of(&before_app, &dave).await, "");
    assert_eq!(listed(&phase1, "dave").await, 0);

    // An instance of the old configuration ends one too.
    let erin = log_in(&phase1_app, None, "erin").await;
    assert_eq!(before.user_sessions().revoke_all("erin").await.unwrap(), 1);
    assert_eq!(user_of(&phase1_app, &erin).await, "");

    // And phase 2 one it has not moved.
    let fred = log_in(&phase1_app, None, "fred").await;
    assert_eq!(phase2.user_sessions().revoke_all("fred").await.unwrap(), 1);
    assert_eq!(user_of(&phase1_app, &fred).await, "");
    assert!(old.load(&id(&fred)).await.unwrap().is_none());
}

/// Once the migration is over (a layer on the new store alone), every
/// session that moved, bound before the migration or during phase 1, is
/// in the new store's index.
#[tokio::test]
async fn moved_sessions_are_listed_and_revoked_after_the_migration() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before_app = app(SessionLayer::new(old.clone()));
    let phase1_app = migrating(&new, &old, MigrationPhase::ReadBoth);
    let phase2_app = migrating(&new, &old, MigrationPhase::Move);

    let gina = log_in(&before_app, None, "gina").await;
    let hugo = log_in(&phase1_app, None, "hugo").await;
    // Phase 2 moves both, under their IDs.
    assert_eq!(user_of(&phase2_app, &gina).await, "gina");
    assert_eq!(user_of(&phase2_app, &hugo).await, "hugo");
    for cookie in [&gina, &hugo] {
        assert!(new.load(&id(cookie)).await.unwrap().is_some());
        let marker = old.load(&id(cookie)).await.unwrap().unwrap();
        assert!(Migration::is_moved_marker(&marker));
    }

    let after = SessionLayer::new(new.clone());
    let after_app = app(after.clone());
    for (cookie, user) in [(&gina, "gina"), (&hugo, "hugo")] {
        assert_eq!(user_of(&after_app, cookie).await, user);
        assert_eq!(listed(&after, user).await, 1, "{user}");
        assert_eq!(after.user_sessions().revoke_all(user).await.unwrap(), 1);
        assert_eq!(user_of(&after_app, cookie).await, "", "{user}: anonymous");
        assert!(new.load(&id(cookie)).await.unwrap().is_none());
    }
}

/// Out of sealed cookies: a session bound while it lives in its cookie
/// cannot be listed (nor revoked) until it moves, and nothing fails; once
/// moved it is indexed in the new store.
#[tokio::test]
async fn sealed_sessions_are_listed_once_they_have_moved() {
    let new = MemoryStore::default();
    let layer = |phase| {
        SessionLayer::new(new.clone())
            .with_migration(Migration::from_cookie(cookie_store()).with_phase(phase))
    };
    let (phase1, phase2) = (layer(MigrationPhase::ReadBoth), layer(MigrationPhase::Move));
    let (phase1_app, phase2_app) = (app(phase1.clone()), app(phase2.clone()));

    let sealed = log_in(&phase1_app, None, "iris").await;
    assert!(Id::parse(&sealed).is_none());
    assert_eq!(user_of(&phase1_app, &sealed).await, "iris");
    for layer in [&phase1, &phase2] {
        assert_eq!(listed(layer, "iris").await, 0);
        assert_eq!(layer.user_sessions().revoke_all("iris").await.unwrap(), 0);
    }

    let reply = call(&phase2_app, "GET", "/user", Some(&sealed)).await;
    assert_eq!(reply.body, "iris");
    let moved = reply.cookie.expect("an ID cookie");
    let after = SessionLayer::new(new.clone());
    for layer in [&phase1, &phase2, &after] {
        assert_eq!(listed(layer, "iris").await, 1);
    }
    assert_eq!(after.user_sessions().revoke_all("iris").await.unwrap(), 1);
    assert_eq!(user_of(&phase2_app, &moved).await, "");
    assert_eq!(user_of(&app(after), &moved).await, "");
}

/// A revoke-all racing the move of the user's session (phase 2) ends it:
/// it is in neither store afterwards, and serves nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_all_racing_a_move_leaves_no_session_behind() {
    let (old, new) = (MemoryStore::default(), MemoryStore::default());
    let before_app = app(SessionLayer::new(old.clone()));
    let phase2 = migrating_layer(&new, &old, MigrationPhase::Move);
    let phase2_app = app(phase2.clone());
    for round in 0..40 {
        let user = format!("user{round}");
        let cookie = log_in(&before_app, None, &user).await;
        let reader = {
            let (app, cookie) = (phase2_app.clone(), cookie.clone());
            tokio::spawn(async move { call(&app, "GET", "/user", Some(&cookie)).await })
        };
        // Live when the revocation began, in whichever store the move
        // has got to: found and ended.
        let revoked = phase2.user_sessions().revoke_all(&user).await.unwrap();
        assert_eq!(revoked, 1, "round {round}");
        assert_eq!(reader.await.unwrap().status, StatusCode::OK);
        assert!(
            new.load(&id(&cookie)).await.unwrap().is_none(),
            "round {round}"
        );
        assert!(
            old.load(&id(&cookie)).await.unwrap().is_none(),
            "round {round}"
        );
        assert_eq!(user_of(&phase2_app, &cookie).await, "", "round {round}");
        assert_eq!(listed(&phase2, &user).await, 0, "round {round}");
    }
}
