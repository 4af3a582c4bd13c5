//! Checks of a store that fails, hangs or holds a record that does not
//! decode: `503`, bounded waits, recovery, and a fresh session.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use super::probe::{Mode, Probe};
use super::{Check, Ctx, cookie_id, op};
use crate::SessionLayer;

impl Ctx {
    pub(super) async fn store_down_gives_503_then_recovers(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = self.app(SessionLayer::new(probe.clone()), |s, _| async move {
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
            self.app(SessionLayer::new(probe.clone()), move |s, _| {
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

    pub(super) async fn store_hang_is_bounded_by_timeout(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = self.app(
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

    pub(super) async fn undecodable_session_starts_a_fresh_one(&self) -> Check {
        let probe = Probe::new(self.stores[0].clone());
        let app = self.app(SessionLayer::new(probe.clone()), |s, _| async move {
            let n = s.update("n", |n: Option<u32>| n.unwrap_or(0) + 1).await?;
            Ok(n.to_string())
        });
        let cookie = app.start_session().await?;
        probe.set_mode(Mode::Undecodable);
        let res = app.send(Some(&cookie)).await;
        probe.set_mode(Mode::Normal);
        ensure!(
            res.status == StatusCode::OK,
            "a stored session that does not decode gave {} {}",
            res.status,
            res.body
        );
        ensure!(
            res.body == "1",
            "a stored session that does not decode was not replaced by a fresh one: n = {}",
            res.body
        );
        let fresh = res.cookie.ok_or("no cookie for the fresh session")?;
        ensure!(
            cookie_id(&fresh)? != cookie_id(&cookie)?,
            "the fresh session kept the old ID"
        );
        let old = op("load", self.store().load(&cookie_id(&cookie)?).await)?
            .ok_or("the record that did not decode was removed")?;
        ensure!(
            old.data.get("n").is_some_and(|n| *n == json!(1)),
            "the record that did not decode was changed: n = {:?}",
            old.data.get("n")
        );
        Ok(())
    }
}
