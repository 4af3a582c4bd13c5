//! Checks of what requests through the layer cost and which cookies they
//! get: laziness, cookie attributes, read-only requests, malformed and
//! unknown cookies.

use http::StatusCode;

use super::app::{inserting, reading_k};
use super::probe::Probe;
use super::{Check, Ctx, HOUR};
use crate::{Id, SessionLayer};

impl Ctx {
    pub(super) async fn untouched_request_costs_nothing(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = self.app(SessionLayer::new(probe.clone()), |_, _| async {
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

    pub(super) async fn new_session_sets_secure_cookie(&self) -> Check {
        let app = inserting(self.front_end, self.layer(), "k", "v");
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

    pub(super) async fn read_only_request_does_not_write(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = reading_k(
            self.front_end,
            SessionLayer::new(probe.clone()).with_touch_after(HOUR),
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

    pub(super) async fn malformed_cookie_is_never_looked_up(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = self.app(SessionLayer::new(probe.clone()), |s, _| async move {
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
            "id=\"unterminated",
            "id=a; id=b; id=c",
            "=; ;;",
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

    pub(super) async fn unknown_id_starts_fresh_session(&self) -> Check {
        let app = self.app(self.layer(), |s, _| async move {
            let was_empty = s.is_empty().await?;
            s.insert("k", 1).await?;
            Ok(format!("{was_empty}"))
        });
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
}
