//! Checks of a session's lifetime: absolute lifetime and idle timeout
//! enforced by the layer, persistent cookies, ID rotation and log-out.

use std::time::Duration;

use http::StatusCode;

use super::app::{inserting, reading_k};
use super::probe::Probe;
use super::{Check, Ctx, HOUR, cookie_id, op};
use crate::SessionLayer;

impl Ctx {
    pub(super) async fn absolute_lifetime_enforced_by_layer(&self) -> Check {
        // The record itself is valid for an hour; only the layer's absolute
        // lifetime says it is over.
        let cookie = inserting(self.front_end, self.layer(), "k", "v")
            .start_session()
            .await?;
        let reader = reading_k(
            self.front_end,
            self.layer()
                .with_absolute_lifetime(Some(Duration::from_millis(600))),
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

    pub(super) async fn idle_timeout_and_touch(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = self.app(
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

    pub(super) async fn persistent_cookie_follows_expiry(&self) -> Check {
        let app = inserting(
            self.front_end,
            self.layer()
                .with_persistent_cookie(true)
                .with_idle_timeout(Some(HOUR)),
            "k",
            "v",
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
        let session_app = inserting(self.front_end, self.layer(), "k", "v");
        let header = session_app.send(None).await.set_cookie.ok_or("no cookie")?;
        ensure!(
            !header.contains("Max-Age") && !header.contains("Expires"),
            "browser-session cookie has a lifetime: {header}"
        );
        Ok(())
    }

    pub(super) async fn cycle_id_keeps_data_retires_old_id(&self) -> Check {
        let login = self.app(self.layer(), |s, _| async move {
            s.insert("cart", vec!["A"]).await?;
            s.cycle_id().await?;
            s.insert("user", "alice").await?;
            Ok(String::new())
        });
        let pre = inserting(self.front_end, self.layer(), "pre", true)
            .start_session()
            .await?;
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

    pub(super) async fn destroy_deletes_and_expires_cookie(&self) -> Check {
        let app = self.app(self.layer(), |s, _| async move {
            s.destroy().await?;
            Ok(String::new())
        });
        let cookie = inserting(self.front_end, self.layer(), "k", "v")
            .start_session()
            .await?;
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
}
