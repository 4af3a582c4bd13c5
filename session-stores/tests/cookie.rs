//! The cookie store through the real layer: round trip across instances,
//! a tamper matrix, key rotation, expiry, and the size limit.
#![cfg(feature = "cookie")]

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use session_core::{Session, SessionLayer};
use session_stores::cookie::{CookieStore, Key};
use tower::{Layer as _, ServiceExt as _};

struct Reply {
    status: StatusCode,
    body: String,
    /// `name=value` of the `Set-Cookie` header, if any.
    cookie: Option<String>,
}

/// One request through `layer` to a handler that, for `?set=V`, appends
/// `V` to the `log` key, and always answers the `log` it sees.
async fn send(layer: &SessionLayer, cookie: Option<&str>, set: Option<&str>) -> Reply {
    let set = set.map(str::to_owned);
    let svc = layer
        .clone()
        .layer(tower::service_fn(move |req: Request<()>| {
            let set = set.clone();
            async move {
                let session = req.extensions().get::<Session>().unwrap().clone();
                let result = async {
                    let mut log = session.get::<String>("log").await?.unwrap_or_default();
                    if let Some(v) = set {
                        log.push_str(&v);
                        session.insert("log", &log).await?;
                    }
                    Ok::<_, session_core::Error>(log)
                }
                .await;
                let res = match result {
                    Ok(log) => Response::new(log),
                    Err(e) => {
                        let mut res = Response::new(e.to_string());
                        *res.status_mut() = e.status();
                        res
                    }
                };
                Ok::<_, Infallible>(res)
            }
        }));
    let mut req = Request::new(());
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    let res = svc.oneshot(req).await.unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    Reply {
        status: res.status(),
        cookie,
        body: res.into_body(),
    }
}

fn layer(keys: &[&Key]) -> SessionLayer {
    SessionLayer::client_side(CookieStore::with_keys(keys.iter().map(|k| (*k).clone())).unwrap())
}

#[tokio::test]
async fn sessions_round_trip_across_instances() {
    let key = Key::generate();
    let (a, b) = (layer(&[&key]), layer(&[&key]));
    let first = send(&a, None, Some("x")).await;
    let cookie = first.cookie.expect("cookie set");
    assert!(cookie.starts_with("id="));
    let second = send(&b, Some(&cookie), Some("y")).await;
    assert_eq!(second.body, "xy");
    let third = send(&a, Some(&second.cookie.unwrap()), None).await;
    assert_eq!(third.body, "xy");
    assert!(
        third.cookie.is_none(),
        "read-only request re-sent the cookie"
    );
}

#[tokio::test]
async fn tampered_values_never_open_and_never_fail() {
    let key = Key::generate();
    let l = layer(&[&key]);
    let cookie = send(&l, None, Some("secret")).await.cookie.unwrap();
    let value = cookie.strip_prefix("id=").unwrap();
    let mut tried = 0;
    for i in 0..value.len() {
        for &replacement in [b'A', b'z', b'-'].iter() {
            let mut bytes = value.as_bytes().to_vec();
            if bytes[i] == replacement {
                continue;
            }
            bytes[i] = replacement;
            let forged = format!("id={}", String::from_utf8(bytes).unwrap());
            let res = send(&l, Some(&forged), None).await;
            tried += 1;
            assert_eq!(res.status, StatusCode::OK, "byte {i}");
            assert_eq!(res.body, "", "a value tampered at byte {i} was accepted");
        }
    }
    for cut in 0..value.len() {
        let res = send(&l, Some(&format!("id={}", &value[..cut])), None).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, ""),
            "cut {cut}"
        );
    }
    for garbage in [
        "id=%%%",
        "id=AAAA",
        "id=!",
        &format!("id={}", "A".repeat(3000)),
    ] {
        let res = send(&l, Some(garbage), None).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, ""),
            "{garbage:.30}"
        );
    }
    assert!(tried > 300);
}

#[tokio::test]
async fn a_value_cannot_move_to_another_cookie_name() {
    let key = Key::generate();
    let a = layer(&[&key]).with_cookie_name("a");
    let b = layer(&[&key]).with_cookie_name("b");
    let cookie = send(&a, None, Some("x")).await.cookie.unwrap();
    let value = cookie.strip_prefix("a=").unwrap();
    let moved = send(&b, Some(&format!("b={value}")), None).await;
    assert_eq!(
        moved.body, "",
        "a value sealed for cookie a opened as cookie b"
    );
    assert_eq!(send(&a, Some(&cookie), None).await.body, "x");
}

#[tokio::test]
async fn wrong_key_starts_fresh_and_retired_key_is_resealed() {
    let (old, new) = (Key::generate(), Key::generate());
    let before = layer(&[&old]);
    let cookie = send(&before, None, Some("x")).await.cookie.unwrap();

    let stranger = layer(&[&Key::generate()]);
    assert_eq!(send(&stranger, Some(&cookie), None).await.body, "");

    let rotated = layer(&[&new, &old]);
    let res = send(&rotated, Some(&cookie), None).await;
    assert_eq!(res.body, "x", "the retired key no longer opens its cookies");
    let resealed = res
        .cookie
        .expect("a cookie under a retired key is sealed again");
    let only_new = layer(&[&new]);
    assert_eq!(send(&only_new, Some(&resealed), None).await.body, "x");
    assert_eq!(send(&only_new, Some(&cookie), None).await.body, "");
}

#[tokio::test]
async fn expired_cookies_are_worthless() {
    let key = Key::generate();
    let l = layer(&[&key]).with_idle_timeout(Some(Duration::from_millis(800)));
    let cookie = send(&l, None, Some("x")).await.cookie.unwrap();
    assert_eq!(send(&l, Some(&cookie), None).await.body, "x");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Replayed after its expiry, even to a layer without an idle timeout.
    assert_eq!(send(&l, Some(&cookie), None).await.body, "");
    let lenient = layer(&[&key]).with_idle_timeout(None);
    assert_eq!(send(&lenient, Some(&cookie), None).await.body, "");
}

#[tokio::test]
async fn oversized_change_is_refused_and_the_old_cookie_stays_valid() {
    let key = Key::generate();
    let l = layer(&[&key]);
    let cookie = send(&l, None, Some("small")).await.cookie.unwrap();
    let big = "x".repeat(5000);
    let res = send(&l, Some(&cookie), Some(&big)).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    assert!(res.cookie.is_none(), "an oversized session was sent");
    assert_eq!(send(&l, Some(&cookie), None).await.body, "small");

    // Just under the limit still works, and the cookie stays within 4096.
    let mut log = String::new();
    let mut current = cookie;
    loop {
        let res = send(&l, Some(&current), Some(&"y".repeat(200))).await;
        if res.status == StatusCode::PAYLOAD_TOO_LARGE {
            break;
        }
        assert_eq!(res.status, StatusCode::OK);
        log.push_str(&"y".repeat(200));
        current = res.cookie.unwrap();
        assert!(current.len() <= 4096, "cookie of {} bytes", current.len());
    }
    assert!(
        current.len() > 3500,
        "limit hit too early: {}",
        current.len()
    );
    assert_eq!(
        send(&l, Some(&current), None).await.body,
        format!("small{log}")
    );
}

#[tokio::test]
async fn sessions_in_cookies_cannot_be_listed_or_revoked() {
    let layer = layer(&[&Key::generate()]);
    assert!(!layer.supports_user_sessions());
    let app = session_core::test_suite::TestApp::new(layer.clone(), |s, _| async move {
        let unsupported = |r: Result<(), session_core::Error>| {
            matches!(r, Err(session_core::Error::Unsupported { .. }))
        };
        let handle = "AAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
        let all = [
            unsupported(s.bind_user("alice", session_core::Device::new()).await),
            unsupported(s.user_sessions().await.map(drop)),
            unsupported(s.revoke_session(&handle).await.map(drop)),
            unsupported(s.revoke_other_sessions().await.map(drop)),
            unsupported(s.revoke_all_sessions().await.map(drop)),
        ];
        // The user is known to be nobody.
        assert_eq!(s.user().await?, None);
        Ok(format!("{all:?}"))
    });
    assert_eq!(app.send(None).await.body, "[true, true, true, true, true]");
    // Through a handler's `?`: 501 Not Implemented, a configuration
    // error, never a 500 or a 503.
    let failing = session_core::test_suite::TestApp::new(layer.clone(), |s, _| async move {
        s.bind_user("alice", session_core::Device::new()).await?;
        Ok(String::new())
    });
    assert_eq!(failing.send(None).await.status, StatusCode::NOT_IMPLEMENTED);
    let users = layer.user_sessions();
    assert!(matches!(
        users.list("alice").await,
        Err(session_core::Error::Unsupported { .. })
    ));
    assert!(matches!(
        users.revoke_all("alice").await,
        Err(session_core::Error::Unsupported { .. })
    ));
}
