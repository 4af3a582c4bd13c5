//! A user's sessions in the shop: "Your sessions" (`/sessions`,
//! `/api/sessions`), signing out one device or all the others, and the
//! password change that signs out every other device.
//!
//! The fleet scenario runs three shops behind HAProxy on one store (Redis,
//! Redis with the near cache, DynamoDB): the same user logs in from three
//! browsers through different instances, one browser signs the others out,
//! and the next request of each signed-out browser is anonymous on every
//! instance while the one that signed them out stays signed in. Each fleet
//! has a store of its own (a private `redis-server`, a private DynamoDB
//! emulator), as its account IDs start at 1.
//!
//! The pages, the bad requests and the cookie store (which keeps no index
//! of a user's sessions) are checked on one shop served in process.

use e2e::client::{ShopClient, csrf_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shop::{Config, LOGIN_FAILURES_PER_ACCOUNT, StoreKind, app};
use test_support::dynalite::Dynalite;
use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::redis::{RedisConfig, RedisServer};
use test_support::{service_env, unique};

const INSECURE: (&str, &str) = ("COOKIE_SECURE", "false");
const PASSWORD: &str = "the first password";
const NEW_PASSWORD: &str = "the second password";

fn new_email(what: &str) -> String {
    format!("{}@example.com", unique(what))
}

/// `GET /api/sessions` at `base` with exactly this `Cookie` header: the
/// next request of the browser holding it, which leaves its jar as it is.
/// The status and the sessions listed.
async fn sessions_with(base: &str, cookie: &str) -> (StatusCode, Vec<Value>) {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/sessions"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET /api/sessions");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let list = body["sessions"].as_array().cloned().unwrap_or_default();
    (status, list)
}

/// The listing of `client` (whose cookie is sent as it is) on every
/// instance: each must answer `200` with `n` sessions, exactly one of them
/// current and recorded with `agent`. The current session's handle.
async fn listed_everywhere(
    instances: &[String],
    client: &ShopClient,
    agent: &str,
    n: usize,
) -> String {
    let cookie = client.cookie_header("/");
    let mut handles = Vec::new();
    for base in instances {
        let (status, list) = sessions_with(base, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{agent} on {base}: {list:?}");
        assert_eq!(list.len(), n, "{agent} on {base}: {list:?}");
        let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1, "{agent} on {base}: {list:?}");
        assert_eq!(current[0]["user_agent"], agent, "{list:?}");
        assert_eq!(current[0]["ip"], "127.0.0.1", "{list:?}");
        let (created, seen) = (&current[0]["created_at_ms"], &current[0]["last_seen_ms"]);
        assert!(
            created.as_i64().is_some_and(|c| seen.as_i64() >= Some(c)),
            "{list:?}"
        );
        handles.push(current[0]["handle"].as_str().expect("a handle").to_owned());
    }
    handles.dedup();
    assert_eq!(handles.len(), 1, "one handle for one session: {handles:?}");
    handles.remove(0)
}

/// Asserts that `cookie` is signed out on every instance.
async fn signed_out_everywhere(instances: &[String], cookie: &str, who: &str) {
    for base in instances {
        let (status, list) = sessions_with(base, cookie).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{who} on {base}: {list:?}"
        );
    }
}

/// The user's browsers, one per instance, each logged in through its own
/// instance and sending its own User-Agent (`browser-<i>`).
async fn log_in_everywhere(instances: &[String], email: &str, password: &str) -> Vec<ShopClient> {
    let mut browsers = Vec::new();
    for (i, base) in instances.iter().enumerate() {
        let browser = ShopClient::new(base).with_user_agent(&format!("browser-{i}"));
        browser.login(email, password).await;
        browsers.push(browser);
    }
    browsers
}

/// A new account, with no session left signed in.
async fn new_account(base: &str, email: &str) {
    let setup = ShopClient::new(base);
    setup.signup(email, PASSWORD).await;
    setup.ok("/api/logout", &json!({})).await;
}

/// `method path` without a body: the status.
async fn status(client: &ShopClient, method: Method, path: &str) -> StatusCode {
    client.call(method, path, None).await.0
}

/// `POST /api/password`: the status and the answer.
async fn change_password(client: &ShopClient, current: &str, new: &str) -> (StatusCode, Value) {
    let body = json!({ "current": current, "new": new });
    client.post_json("/api/password", &body).await
}

/// `POST /api/login`: the status and the answer.
async fn log_in(client: &ShopClient, email: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({ "email": email, "password": password });
    client.post_json("/api/login", &body).await
}

/// `POST /api/sessions/revoke-others`: the status.
async fn revoke_others(client: &ShopClient) -> StatusCode {
    let answer = client
        .post_json("/api/sessions/revoke-others", &json!({}))
        .await;
    answer.0
}

/// Three browsers signed in; one signs out the others, first all at once,
/// then one by handle.
async fn signing_out_reaches_every_instance(fleet: &Fleet, instances: &[String]) {
    let email = new_email("devices");
    new_account(&fleet.url(), &email).await;
    let browsers = log_in_everywhere(instances, &email, PASSWORD).await;
    // Every browser reads its list on every instance, so that each
    // instance has seen (and may cache) every session.
    let mut handles = Vec::new();
    for (i, b) in browsers.iter().enumerate() {
        handles.push(listed_everywhere(instances, b, &format!("browser-{i}"), 3).await);
    }
    let mut distinct = handles.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{handles:?}");

    // Browser 0 signs out the others, through the load balancer.
    let others = [
        browsers[1].cookie_header("/"),
        browsers[2].cookie_header("/"),
    ];
    let answer = browsers[0]
        .at(fleet.url())
        .ok("/api/sessions/revoke-others", &json!({}))
        .await;
    assert_eq!(answer["revoked"], 2, "{answer}");
    for (i, cookie) in others.iter().enumerate() {
        signed_out_everywhere(instances, cookie, &format!("browser-{}", i + 1)).await;
    }
    listed_everywhere(instances, &browsers[0], "browser-0", 1).await;

    // Browsers 1 and 2 log in again, through other instances than before.
    for (i, base) in [(1, &instances[2]), (2, &instances[0])] {
        browsers[i].at(base.as_str()).login(&email, PASSWORD).await;
    }
    let mut handles = Vec::new();
    for (i, b) in browsers.iter().enumerate() {
        handles.push(listed_everywhere(instances, b, &format!("browser-{i}"), 3).await);
    }
    // Browser 0 signs out browser 1 by its handle, through instance 1.
    let one = browsers[1].cookie_header("/");
    let path = format!("/api/sessions/{}", handles[1]);
    let via = browsers[0].at(instances[1].as_str());
    assert_eq!(status(&via, Method::DELETE, &path).await, StatusCode::OK);
    signed_out_everywhere(instances, &one, "browser-1").await;
    listed_everywhere(instances, &browsers[0], "browser-0", 2).await;
    listed_everywhere(instances, &browsers[2], "browser-2", 2).await;
    // Gone is gone: the same handle again is not found.
    let again = status(&browsers[0], Method::DELETE, &path).await;
    assert_eq!(again, StatusCode::NOT_FOUND);
}

/// Three browsers signed in; one changes the password.
async fn password_change_signs_out_the_others(fleet: &Fleet, instances: &[String]) {
    let email = new_email("password");
    new_account(&fleet.url(), &email).await;
    let browsers = log_in_everywhere(instances, &email, PASSWORD).await;
    for (i, b) in browsers.iter().enumerate() {
        listed_everywhere(instances, b, &format!("browser-{i}"), 3).await;
    }
    let before: Vec<String> = browsers.iter().map(|b| b.cookie_header("/")).collect();
    let changer = browsers[0].at(instances[1].as_str());
    let (code, answer) = change_password(&changer, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        (code, &answer["revoked"]),
        (StatusCode::OK, &json!(2)),
        "{answer}"
    );
    let after = browsers[0].cookie_header("/");
    assert_ne!(after, before[0], "the session ID changes with the password");
    for (i, cookie) in before.iter().enumerate() {
        signed_out_everywhere(instances, cookie, &format!("browser-{i} before the change")).await;
    }
    listed_everywhere(instances, &browsers[0], "browser-0", 1).await;
    // The old password is refused, the new one accepted.
    let fresh = ShopClient::new(fleet.url());
    let (code, _) = log_in(&fresh, &email, PASSWORD).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    fresh.login(&email, NEW_PASSWORD).await;
}

/// Both scenarios on three shops behind HAProxy with `env`.
async fn fleet_scenarios(env: &[(&str, &str)]) {
    let fleet = Fleet::start(3, env, Balance::RoundRobin).await;
    let instances: Vec<String> = fleet
        .shops
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    signing_out_reaches_every_instance(&fleet, &instances).await;
    password_change_signs_out_the_others(&fleet, &instances).await;
}

/// A fleet on its own `redis-server`, with `near_cache` sessions kept in
/// each shop: the shops' account IDs start at 1 in each fleet's database,
/// so fleets sharing one store would list each other's sessions.
async fn redis_fleet_scenarios(near_cache: &str) {
    let redis = RedisServer::start(RedisConfig::new()).await;
    let url = redis.url();
    fleet_scenarios(&[
        ("SESSION_STORE", "redis"),
        ("REDIS_URL", &url),
        ("REDIS_NEAR_CACHE", near_cache),
        INSECURE,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fleet_signs_devices_out_on_every_instance() {
    redis_fleet_scenarios("0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fleet_with_near_cache_signs_devices_out_on_every_instance() {
    redis_fleet_scenarios("10000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_fleet_signs_devices_out_on_every_instance() {
    // Its own emulator: a new table, whatever schema the store creates.
    let dynamo = Dynalite::start().await;
    let endpoint = dynamo.endpoint();
    let aws = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"].map(service_env);
    fleet_scenarios(&[
        ("SESSION_STORE", "dynamodb"),
        ("DYNAMODB_ENDPOINT", &endpoint),
        ("AWS_ACCESS_KEY_ID", &aws[0]),
        ("AWS_SECRET_ACCESS_KEY", &aws[1]),
        ("AWS_REGION", &aws[2]),
        INSECURE,
    ])
    .await;
}

/// One shop in process, with its sessions in `store`.
async fn shop(store: StoreKind) -> String {
    let mut config = Config::default();
    config.secure_cookie = false;
    config.database_url = Some("sqlite::memory:".into());
    config.session_store = store;
    format!("http://{}", e2e::serve(app(&config).await.unwrap()).await)
}

/// `POST path` with a form and the page's CSRF token (or `csrf` instead):
/// the status and where it redirects.
async fn post_form(
    client: &ShopClient,
    path: &str,
    fields: &[(&str, &str)],
    csrf: Option<&str>,
) -> (StatusCode, String) {
    let token = match csrf {
        Some(token) => token.to_owned(),
        None => csrf_of(&client.page("/").await),
    };
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &token));
    let res = client
        .http
        .post(client.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, to)
}

/// The handle of `client`'s own session.
async fn own_handle(client: &ShopClient) -> String {
    let list = client.get_json("/api/sessions").await;
    let current = list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == true);
    current
        .and_then(|s| s["handle"].as_str())
        .expect("the current session")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_page_lists_devices_and_signs_them_out_with_csrf_forms() {
    let base = shop(StoreKind::Memory).await;
    let email = new_email("page");
    new_account(&base, &email).await;
    let agents = ["this browser", "other browser", "third browser"];
    let [this, other, third] = agents.map(|agent| ShopClient::new(&base).with_user_agent(agent));
    let this = this.without_redirects();
    for b in [&this, &other, &third] {
        b.login(&email, PASSWORD).await;
    }
    let page = this.page("/sessions").await;
    for agent in agents {
        assert!(page.contains(agent), "{agent} missing:\n{page}");
    }
    assert_eq!(page.matches("id=\"this-device\"").count(), 1, "{page}");
    assert!(page.contains("id=\"revoke-others\""), "{page}");
    assert!(this.page("/profile").await.contains("href=\"/sessions\""));

    // Sign out one device: a form without the token is refused.
    let handle = own_handle(&other).await;
    let one = [("handle", handle.as_str())];
    let (code, _) = post_form(&this, "/sessions/revoke", &one, Some("")).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let code = status(&other, Method::GET, "/api/sessions").await;
    assert_eq!(code, StatusCode::OK, "still signed in");
    let done = post_form(&this, "/sessions/revoke", &one, None).await;
    assert_eq!(done, (StatusCode::SEE_OTHER, "/sessions".to_owned()));
    assert_eq!(
        revoke_others(&other).await,
        StatusCode::UNAUTHORIZED,
        "signed out"
    );

    // Sign out all others: a token of another session is refused.
    let forged = csrf_of(&third.page("/").await);
    let (code, _) = post_form(&this, "/sessions/revoke-others", &[], Some(&forged)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        status(&third, Method::GET, "/api/sessions").await,
        StatusCode::OK
    );
    let done = post_form(&this, "/sessions/revoke-others", &[], None).await;
    assert_eq!(
        done,
        (StatusCode::SEE_OTHER, "/sessions?signed_out=1".to_owned())
    );
    assert_eq!(
        revoke_others(&third).await,
        StatusCode::UNAUTHORIZED,
        "signed out"
    );
    let page = this.page("/sessions?signed_out=1").await;
    assert!(
        page.contains("id=\"signed-out\"") && !page.contains("id=\"revoke-others\""),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_form_changes_it_with_csrf_and_log_in_limits() {
    let base = shop(StoreKind::Memory).await;
    let email = new_email("form");
    new_account(&base, &email).await;
    let this = ShopClient::new(&base).without_redirects();
    let other = ShopClient::new(&base);
    this.login(&email, PASSWORD).await;
    other.login(&email, PASSWORD).await;
    let page = this.page("/password").await;
    assert!(
        page.contains("name=\"current\"") && page.contains("name=\"new\""),
        "{page}"
    );
    let fields = [("current", PASSWORD), ("new", NEW_PASSWORD)];
    let (code, _) = post_form(&this, "/password", &fields, Some("")).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "no CSRF token");
    let short = [("current", PASSWORD), ("new", "short")];
    let (code, _) = post_form(&this, "/password", &short, None).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let before = this.cookie_header("/");
    let done = post_form(&this, "/password", &fields, None).await;
    assert_eq!(
        done,
        (
            StatusCode::SEE_OTHER,
            "/sessions?password=changed".to_owned()
        )
    );
    assert_ne!(this.cookie_header("/"), before, "a new session ID");
    assert_eq!(
        revoke_others(&other).await,
        StatusCode::UNAUTHORIZED,
        "signed out"
    );
    assert!(
        this.page("/sessions?password=changed")
            .await
            .contains("id=\"password-changed\"")
    );

    // Wrong current passwords count like failed log-ins: then even the
    // right one is refused for a while, on the API as in the form, and
    // so is the log-in.
    for _ in 0..LOGIN_FAILURES_PER_ACCOUNT {
        let (code, body) = change_password(&this, "a wrong guess", "whatever else").await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    }
    let third = "a third password";
    let res = this
        .http
        .post(this.url("/api/password"))
        .json(&json!({ "current": NEW_PASSWORD, "new": third }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let (code, _) = post_form(
        &this,
        "/password",
        &[("current", NEW_PASSWORD), ("new", third)],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    let (code, _) = log_in(&ShopClient::new(&base), &email, NEW_PASSWORD).await;
    assert_eq!(
        code,
        StatusCode::TOO_MANY_REQUESTS,
        "the log-in shares the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_session_requests_get_client_errors() {
    let base = shop(StoreKind::Memory).await;
    let anonymous = ShopClient::new(&base);
    assert_eq!(
        status(&anonymous, Method::GET, "/api/sessions").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(revoke_others(&anonymous).await, StatusCode::UNAUTHORIZED);
    let (code, _) = change_password(&anonymous, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    let email = new_email("bad");
    new_account(&base, &email).await;
    let client = ShopClient::new(&base);
    client.login(&email, PASSWORD).await;
    let long = "x".repeat(5000);
    for handle in [
        "not-a-handle",
        "%FF%FE",
        "%00",
        long.as_str(),
        "..%2F..%2Fetc",
    ] {
        let code = status(&client, Method::DELETE, &format!("/api/sessions/{handle}")).await;
        assert!(code.is_client_error(), "{handle:.40}: {code}");
    }
    let code = status(&client, Method::DELETE, "/api/sessions/not-a-handle").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // A handle that was real, once its session is gone: not found.
    let gone = ShopClient::new(&base);
    gone.login(&email, PASSWORD).await;
    let path = format!("/api/sessions/{}", own_handle(&gone).await);
    gone.ok("/api/logout", &json!({})).await;
    assert_eq!(
        status(&client, Method::DELETE, &path).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&anonymous, Method::DELETE, &path).await,
        StatusCode::UNAUTHORIZED
    );
    // JSON bodies only, like every API write.
    let res = client
        .http
        .post(client.url("/api/sessions/revoke-others"))
        .form(&[("a", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for body in [
        json!({}),
        json!({ "current": PASSWORD }),
        json!({ "current": 1, "new": 2 }),
        json!([]),
    ] {
        let (code, _) = client.post_json("/api/password", &body).await;
        assert!(code.is_client_error(), "{body}: {code}");
    }
    let (code, _) = change_password(&client, PASSWORD, &long).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // Still signed in after all of it.
    let list = client.get_json("/api/sessions").await;
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_store_says_sessions_cannot_be_listed_or_signed_out() {
    let base = shop(StoreKind::Cookie).await;
    let client = ShopClient::new(&base);
    // Log-in works; it ties nothing to the account.
    client.signup(&new_email("cookie"), PASSWORD).await;
    let (code, body) = client.call(Method::GET, "/api/sessions", None).await;
    assert_eq!(code, StatusCode::NOT_IMPLEMENTED);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("cookie")),
        "{body}"
    );
    assert_eq!(revoke_others(&client).await, StatusCode::NOT_IMPLEMENTED);
    let code = status(&client, Method::DELETE, "/api/sessions/whatever").await;
    assert_eq!(code, StatusCode::NOT_IMPLEMENTED);
    let (code, _) = change_password(&client, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        code,
        StatusCode::NOT_IMPLEMENTED,
        "other sessions could not be signed out"
    );
    for page in ["/sessions", "/password"] {
        let res = client.http.get(client.url(page)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_IMPLEMENTED, "{page}");
        let text = res.text().await.unwrap();
        assert!(
            text.contains("id=\"unavailable\"") && text.contains("cookie"),
            "{page}: {text}"
        );
    }
    // Still signed in.
    assert_eq!(
        status(&client, Method::GET, "/api/profile").await,
        StatusCode::OK
    );
}
