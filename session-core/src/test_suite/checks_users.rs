//! Checks of the per-user session index: the store's index primitives,
//! listing, revoking one, the others or all of a user's sessions from any
//! instance, ended sessions dropping out, the cap per user, no orphaned
//! entries, and log-ins racing a revoke-all.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;

use super::{Check, Ctx, TestReply, op};
use crate::store::{UserIndex, now};
use crate::users::entries::Entries;
use crate::{Device, Error, Id, Session, SessionInfo, SessionLayer};

/// A user name no other check uses.
fn fresh_user() -> String {
    format!("user {} <x@example.com>", Id::random())
}

/// The cookie a client holds after `reply`, having sent `sent`.
fn next_cookie(sent: &str, reply: &TestReply) -> String {
    reply.cookie.clone().unwrap_or_else(|| sent.to_owned())
}

impl Ctx {
    /// Whether the store under test keeps user indexes.
    fn indexed(&self) -> bool {
        self.store().supports_user_index()
    }

    /// A layer over store instance `i` (of three).
    fn layer_on(&self, i: usize) -> SessionLayer {
        SessionLayer::new(self.stores[i % self.stores.len()].clone())
    }

    /// Sends one request through `layer` with `cookie`, running `f` on its
    /// session; returns what `f` returned and the reply.
    async fn with_session<T, F, Fut>(
        &self,
        layer: SessionLayer,
        cookie: Option<&str>,
        f: F,
    ) -> std::result::Result<(T, TestReply), String>
    where
        T: Send + 'static,
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = crate::Result<T>> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        let f = Arc::new(f);
        let app = self.app(layer, move |s, _| {
            let (filled, f) = (filled.clone(), f.clone());
            async move {
                let value = f(s).await?;
                *filled.lock().expect("slot") = Some(value);
                Ok(String::new())
            }
        });
        let reply = app.send(cookie).await;
        ensure!(
            reply.status == StatusCode::OK,
            "request failed: {} {}",
            reply.status,
            reply.body
        );
        let value = slot
            .lock()
            .expect("slot")
            .take()
            .ok_or("handler did not run")?;
        Ok((value, reply))
    }

    /// Logs `user` in on a new session through `layer`, with a device
    /// naming `agent`; returns the session's cookie.
    async fn log_in(
        &self,
        layer: SessionLayer,
        user: &str,
        agent: &str,
    ) -> std::result::Result<String, String> {
        let (user, agent) = (user.to_owned(), agent.to_owned());
        let (_, reply) = self
            .with_session(layer, None, move |s| {
                let (user, agent) = (user.clone(), agent.clone());
                async move {
                    s.insert("cart", ["sku-1"]).await?;
                    s.cycle_id().await?;
                    s.bind_user(
                        user,
                        Device::new().with_user_agent(agent).with_ip("192.0.2.7"),
                    )
                    .await
                }
            })
            .await?;
        reply.cookie.ok_or_else(|| "log-in set no cookie".into())
    }

    /// The user the session of `cookie` is bound to, as seen through
    /// `layer` ("" for none).
    async fn whoami(
        &self,
        layer: SessionLayer,
        cookie: &str,
    ) -> std::result::Result<String, String> {
        let (user, _) = self
            .with_session(layer, Some(cookie), |s| async move {
                Ok(s.user().await?.unwrap_or_default())
            })
            .await?;
        Ok(user)
    }

    /// The listing the session of `cookie` sees through `layer`.
    async fn listing(
        &self,
        layer: SessionLayer,
        cookie: &str,
    ) -> std::result::Result<Vec<SessionInfo>, String> {
        let (list, _) = self
            .with_session(
                layer,
                Some(cookie),
                |s| async move { s.user_sessions().await },
            )
            .await?;
        Ok(list)
    }

    /// The entries of `user`'s stored index (none without an index).
    async fn stored_entries(&self, user: &str) -> std::result::Result<Vec<Id>, String> {
        let index = op("load_user_index", self.store().load_user_index(user).await)?;
        Ok(match index {
            Some(index) => Entries::decode(&index)
                .map_err(|e| format!("stored index does not decode: {e}"))?
                .0
                .into_iter()
                .map(|e| e.id)
                .collect(),
            None => Vec::new(),
        })
    }

    /// Without index support: every call says so clearly.
    async fn index_unsupported(&self) -> Check {
        ensure!(
            !self.layer().supports_user_sessions(),
            "the layer claims user sessions although the store keeps no index"
        );
        let reply = self
            .app(self.layer(), |s, _| async move {
                s.bind_user("u", Device::new()).await?;
                Ok(String::new())
            })
            .send(None)
            .await;
        ensure!(
            reply.status == StatusCode::NOT_IMPLEMENTED,
            "bind_user on a store without an index answered {}",
            reply.status
        );
        Ok(())
    }

    pub(super) async fn user_index_primitives(&self) -> Check {
        if !self.indexed() {
            let loaded = self.store().load_user_index("u").await;
            ensure!(
                matches!(loaded, Err(Error::Unsupported { .. })),
                "a store without index support answered {loaded:?}"
            );
            return self.index_unsupported().await;
        }
        let (store, other) = (self.store(), &*self.stores[1]);
        let user = fresh_user();
        let first = UserIndex::new(1, Some(now() + super::HOUR), vec![1, 2, 3]);
        ensure!(
            op(
                "save new index",
                store.save_user_index(&user, &first, None).await
            )?,
            "saving a new index was refused"
        );
        ensure!(
            !op(
                "save over it",
                other.save_user_index(&user, &first, None).await
            )?,
            "an insert-only save overwrote an existing index"
        );
        let loaded = op("load_user_index", other.load_user_index(&user).await)?;
        ensure!(
            loaded.as_ref() == Some(&first),
            "loaded {loaded:?}, saved {first:?}"
        );
        let second = UserIndex::new(2, None, vec![4; 5000]);
        ensure!(
            !op(
                "stale save",
                store.save_user_index(&user, &second, Some(7)).await
            )?,
            "a save expecting the wrong version was accepted"
        );
        ensure!(
            op("save", other.save_user_index(&user, &second, Some(1)).await)?,
            "a save expecting the stored version was refused"
        );
        let loaded = op("load_user_index", store.load_user_index(&user).await)?;
        ensure!(
            loaded.as_ref() == Some(&second),
            "loaded {loaded:?}, saved {second:?}"
        );
        ensure!(
            !op("stale delete", store.delete_user_index(&user, 1).await)?,
            "a delete expecting the wrong version was accepted"
        );
        ensure!(
            op("delete", other.delete_user_index(&user, 2).await)?,
            "a delete expecting the stored version was refused"
        );
        ensure!(
            op("load_user_index", store.load_user_index(&user).await)?.is_none(),
            "a deleted index was loaded"
        );
        ensure!(
            !op("delete missing", store.delete_user_index(&user, 2).await)?,
            "deleting a missing index reported success"
        );
        let brief = UserIndex::new(1, Some(now() + time::Duration::milliseconds(1200)), vec![9]);
        op(
            "save brief",
            store.save_user_index(&user, &brief, None).await,
        )?;
        tokio::time::sleep(Duration::from_millis(1400)).await;
        ensure!(
            op("load_user_index", store.load_user_index(&user).await)?.is_none(),
            "an expired index was loaded"
        );
        ensure!(
            op(
                "save after expiry",
                store.save_user_index(&user, &first, None).await
            )?,
            "an expired index blocked a new one"
        );
        Ok(())
    }

    pub(super) async fn bound_sessions_are_listed(&self) -> Check {
        if !self.indexed() {
            return self.index_unsupported().await;
        }
        ensure!(
            self.layer().supports_user_sessions(),
            "the layer denies user sessions"
        );
        let user = fresh_user();
        let mut cookies = Vec::new();
        for i in 0..3 {
            cookies.push(
                self.log_in(self.layer_on(i), &user, &format!("agent-{i}"))
                    .await?,
            );
            // Apart, so that the order of creation is clear.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        ensure!(
            self.whoami(self.layer_on(2), &cookies[0]).await? == user,
            "a bound session does not know its user"
        );
        let list = self.listing(self.layer_on(1), &cookies[0]).await?;
        ensure!(
            list.len() == 3,
            "3 bound sessions, {} listed: {list:?}",
            list.len()
        );
        let agents: Vec<_> = list.iter().map(|i| i.device.user_agent.clone()).collect();
        ensure!(
            agents
                == [
                    Some("agent-0".into()),
                    Some("agent-1".into()),
                    Some("agent-2".into())
                ],
            "listing is not oldest first with each device: {agents:?}"
        );
        ensure!(
            list.iter().map(|i| i.current).collect::<Vec<_>>() == [true, false, false],
            "exactly the asking session must be current: {list:?}"
        );
        let ids: Vec<String> = cookies
            .iter()
            .map(|c| super::cookie_id(c).map(|id| id.to_string()))
            .collect::<std::result::Result<_, _>>()?;
        for info in &list {
            ensure!(
                !ids.contains(&info.handle.to_string()),
                "a handle is a session ID"
            );
            ensure!(
                info.created_at <= info.last_seen && info.last_seen <= now(),
                "created {} / last seen {} out of order",
                info.created_at,
                info.last_seen
            );
            ensure!(
                info.device.ip.as_deref() == Some("192.0.2.7"),
                "device IP not kept: {:?}",
                info.device
            );
        }
        let outside = op("list", self.layer_on(2).user_sessions().list(&user).await)?;
        ensure!(
            outside.len() == 3 && outside.iter().all(|i| !i.current),
            "listing outside a request: {outside:?}"
        );
        // A session bound to nobody lists nothing.
        let (anonymous, _) = self
            .with_session(self.layer(), None, |s| async move {
                s.insert("k", 1).await?;
                s.user_sessions().await
            })
            .await?;
        ensure!(
            anonymous.is_empty(),
            "an unbound session listed {anonymous:?}"
        );
        op(
            "clean up",
            self.layer().user_sessions().revoke_all(&user).await,
        )?;
        Ok(())
    }

    pub(super) async fn revoke_one_others_and_all(&self) -> Check {
        if !self.indexed() {
            return self.index_unsupported().await;
        }
        let user = fresh_user();
        let mut cookies = Vec::new();
        for i in 0..4 {
            cookies.push(
                self.log_in(self.layer_on(i), &user, &format!("agent-{i}"))
                    .await?,
            );
        }
        let list = self.listing(self.layer(), &cookies[0]).await?;
        let handle = list[1].handle.clone();
        // Revoke one by handle, from session 0 on instance 1.
        let (revoked, _) = self
            .with_session(self.layer_on(1), Some(&cookies[0]), move |s| {
                let handle = handle.clone();
                async move { s.revoke_session(&handle).await }
            })
            .await?;
        ensure!(revoked, "revoking a live session by its handle said false");
        for i in 0..3 {
            ensure!(
                self.whoami(self.layer_on(i), &cookies[1]).await?.is_empty(),
                "a revoked session is still signed in on instance {i}"
            );
        }
        let unknown: crate::SessionHandle =
            "AAAAAAAAAAAAAAAAAAAAAA".parse().map_err(|_| "handle")?;
        let (revoked, _) = self
            .with_session(self.layer(), Some(&cookies[0]), move |s| {
                let unknown = unknown.clone();
                async move { s.revoke_session(&unknown).await }
            })
            .await?;
        ensure!(!revoked, "revoking an unknown handle said true");
        // Revoke the others, from session 0.
        let (n, _) = self
            .with_session(self.layer_on(2), Some(&cookies[0]), |s| async move {
                s.revoke_other_sessions().await
            })
            .await?;
        ensure!(
            n == 2,
            "revoke_other_sessions ended {n} sessions, expected 2"
        );
        for (i, cookie) in cookies.iter().enumerate().skip(2) {
            ensure!(
                self.whoami(self.layer_on(i + 1), cookie).await?.is_empty(),
                "session {i} survived revoke_other_sessions"
            );
        }
        ensure!(
            self.whoami(self.layer_on(1), &cookies[0]).await? == user,
            "revoke_other_sessions ended the current session"
        );
        // Revoke all, with one more session logged in.
        let another = self.log_in(self.layer_on(1), &user, "agent-9").await?;
        let (n, reply) = self
            .with_session(self.layer(), Some(&cookies[0]), |s| async move {
                s.revoke_all_sessions().await
            })
            .await?;
        ensure!(n == 2, "revoke_all_sessions ended {n} sessions, expected 2");
        ensure!(
            reply
                .set_cookie
                .as_deref()
                .is_some_and(|c| c.contains("Max-Age=0")),
            "revoke_all_sessions did not remove the current cookie: {:?}",
            reply.set_cookie
        );
        for cookie in [&cookies[0], &another] {
            ensure!(
                self.whoami(self.layer_on(2), cookie).await?.is_empty(),
                "a session survived revoke_all_sessions"
            );
        }
        ensure!(
            self.stored_entries(&user).await?.is_empty(),
            "the index outlived every session of its user"
        );
        // Out of a request: revoke by handle and revoke all.
        let users = self.layer_on(1).user_sessions();
        let a = self.log_in(self.layer(), &user, "a").await?;
        let b = self.log_in(self.layer_on(2), &user, "b").await?;
        let listed = op("list", users.list(&user).await)?;
        ensure!(listed.len() == 2, "listed {listed:?}");
        ensure!(
            op("revoke", users.revoke(&user, &listed[0].handle).await)?,
            "revoking by handle outside a request said false"
        );
        ensure!(
            self.whoami(self.layer(), &a).await?.is_empty(),
            "revoked session alive"
        );
        ensure!(
            !op("revoke again", users.revoke(&user, &listed[0].handle).await)?,
            "revoking a revoked session said true"
        );
        ensure!(
            !op(
                "revoke as another user",
                users.revoke("someone else", &listed[1].handle).await
            )?,
            "another user's handle revoked a session"
        );
        ensure!(
            op("revoke_all", users.revoke_all(&user).await)? == 1,
            "revoke_all count"
        );
        ensure!(
            self.whoami(self.layer(), &b).await?.is_empty(),
            "revoked session alive"
        );
        Ok(())
    }

    pub(super) async fn ended_sessions_drop_out(&self) -> Check {
        if !self.indexed() {
            return self.index_unsupported().await;
        }
        let user = fresh_user();
        let short = || {
            self.layer_on(1)
                .with_idle_timeout(Some(Duration::from_millis(1000)))
        };
        // Apart, so that the order of creation is clear to the millisecond.
        let apart = || tokio::time::sleep(Duration::from_millis(3));
        let expiring = self.log_in(short(), &user, "expiring").await?;
        apart().await;
        let destroyed = self.log_in(self.layer(), &user, "destroyed").await?;
        apart().await;
        let cycled = self.log_in(self.layer_on(2), &user, "cycled").await?;
        apart().await;
        let kept = self.log_in(self.layer(), &user, "kept").await?;
        let before = self.listing(self.layer(), &kept).await?;
        ensure!(before.len() == 4, "4 sessions, listed {before:?}");
        let (_, reply) = self
            .with_session(self.layer_on(1), Some(&destroyed), |s| async move {
                s.destroy().await
            })
            .await?;
        ensure!(reply.status == StatusCode::OK, "destroy failed");
        let (_, reply) = self
            .with_session(self.layer_on(1), Some(&cycled), |s| async move {
                s.cycle_id().await
            })
            .await?;
        let cycled_now = next_cookie(&cycled, &reply);
        ensure!(cycled_now != cycled, "cycle_id set no new cookie");
        ensure!(
            self.whoami(self.layer(), &cycled_now).await? == user,
            "a cycled session lost its user"
        );
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let after = self.listing(self.layer_on(2), &kept).await?;
        let agents: Vec<_> = after
            .iter()
            .filter_map(|i| i.device.user_agent.clone())
            .collect();
        ensure!(
            agents == ["cycled", "kept"],
            "after an expiry, a destroy and a cycle, listed {agents:?}"
        );
        let cycled_handle = &before[2].handle;
        ensure!(
            &after[0].handle == cycled_handle,
            "cycle_id changed the session's handle"
        );
        let stored = self.stored_entries(&user).await?;
        let live: Vec<Id> = [&cycled_now, &kept]
            .into_iter()
            .map(|c| super::cookie_id(c))
            .collect::<std::result::Result<_, _>>()?;
        ensure!(
            stored.len() == 2 && live.iter().all(|id| stored.contains(id)),
            "after listing, the index holds {} entries, not just the 2 live sessions",
            stored.len()
        );
        let _ = expiring;
        op(
            "clean up",
            self.layer().user_sessions().revoke_all(&user).await,
        )?;
        Ok(())
    }

    pub(super) async fn sessions_per_user_are_capped(&self) -> Check {
        if !self.indexed() {
            return self.index_unsupported().await;
        }
        let user = fresh_user();
        let capped = |i| self.layer_on(i).with_max_sessions_per_user(2);
        let mut cookies = Vec::new();
        for i in 0..4 {
            cookies.push(self.log_in(capped(i), &user, &format!("agent-{i}")).await?);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let list = self.listing(capped(0), &cookies[3]).await?;
        let agents: Vec<_> = list
            .iter()
            .filter_map(|i| i.device.user_agent.clone())
            .collect();
        ensure!(
            agents == ["agent-2", "agent-3"],
            "with a cap of 2 after 4 log-ins, listed {agents:?} (the oldest must go)"
        );
        for (i, cookie) in cookies.iter().enumerate().take(2) {
            ensure!(
                self.whoami(self.layer_on(i + 1), cookie).await?.is_empty(),
                "session {i}, over the cap, is still signed in"
            );
        }
        ensure!(
            self.stored_entries(&user).await?.len() == 2,
            "the index keeps more entries than the cap"
        );
        op(
            "clean up",
            self.layer().user_sessions().revoke_all(&user).await,
        )?;
        Ok(())
    }

    pub(super) async fn user_index_leaves_no_orphans(&self) -> Check {
        if !self.indexed() {
            return self.index_unsupported().await;
        }
        // With an absolute lifetime, an index ends with its last session,
        // even if nobody lists or logs in again.
        let user = fresh_user();
        let lifetime = || {
            self.layer_on(1)
                .with_absolute_lifetime(Some(Duration::from_millis(1500)))
        };
        self.log_in(lifetime(), &user, "a").await?;
        self.log_in(lifetime(), &user, "b").await?;
        ensure!(
            self.stored_entries(&user).await?.len() == 2,
            "the index does not hold the 2 sessions"
        );
        tokio::time::sleep(Duration::from_millis(2200)).await;
        ensure!(
            op("load_user_index", self.store().load_user_index(&user).await)?.is_none(),
            "the index outlived the absolute lifetime of all its sessions"
        );
        // Every entry left names a live session bound to its user.
        let user = fresh_user();
        let mut cookies = Vec::new();
        for i in 0..5 {
            cookies.push(self.log_in(self.layer_on(i), &user, "x").await?);
        }
        for cookie in &cookies[..2] {
            self.with_session(
                self.layer(),
                Some(cookie),
                |s| async move { s.destroy().await },
            )
            .await?;
        }
        self.with_session(self.layer_on(2), Some(&cookies[2]), |s| async move {
            s.cycle_id().await
        })
        .await?;
        self.with_session(self.layer_on(1), Some(&cookies[3]), |s| async move {
            s.bind_user("somebody else", Device::new()).await
        })
        .await?;
        for id in self.stored_entries(&user).await? {
            let record = op("load", self.store().load(&id).await)?
                .ok_or("an index entry names a session that does not exist")?;
            ensure!(
                record.binding.is_some_and(|b| b.user == user),
                "an index entry names a session bound to another user"
            );
        }
        op(
            "clean up",
            self.layer().user_sessions().revoke_all(&user).await,
        )?;
        op(
            "clean up",
            self.layer()
                .user_sessions()
                .revoke_all("somebody else")
                .await,
        )?;
        ensure!(
            self.stored_entries(&user).await?.is_empty(),
            "revoke_all left index entries"
        );
        Ok(())
    }

    pub(super) async fn log_ins_racing_revoke_all(&self) -> Check {
        if !self.indexed() {
            return self.index_unsupported().await;
        }
        // 30 log-ins over three instances, half of them rotating their ID
        // once more right after; a revoke-all starts once a third have
        // completed. Every session whose log-in completed before it began
        // must be signed out, under any cookie it had.
        const N: usize = 30;
        let user = fresh_user();
        let done: Arc<Mutex<Vec<(Instant, Vec<String>)>>> = Arc::default();
        let ctx = Arc::new(Ctx {
            stores: self.stores.clone(),
            front_end: self.front_end,
        });
        let mut tasks = Vec::new();
        for i in 0..N {
            let (ctx, user, done) = (ctx.clone(), user.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
                let cookie = ctx.log_in(ctx.layer_on(i), &user, "racer").await?;
                let at = Instant::now();
                let mut cookies = vec![cookie.clone()];
                if i % 2 == 0 {
                    let (_, reply) = ctx
                        .with_session(ctx.layer_on(i + 1), Some(&cookie), |s| async move {
                            s.cycle_id().await
                        })
                        .await?;
                    cookies.push(next_cookie(&cookie, &reply));
                }
                done.lock().expect("done").push((at, cookies));
                Ok::<_, String>(())
            }));
        }
        while done.lock().expect("done").len() < N / 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let began = Instant::now();
        op(
            "revoke_all",
            self.layer_on(1).user_sessions().revoke_all(&user).await,
        )?;
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        let before: Vec<Vec<String>> = done
            .lock()
            .expect("done")
            .iter()
            .filter(|(at, _)| *at < began)
            .map(|(_, cookies)| cookies.clone())
            .collect();
        ensure!(!before.is_empty(), "no log-in completed before the revoke");
        for (n, cookies) in before.iter().enumerate() {
            for cookie in cookies {
                ensure!(
                    self.whoami(self.layer_on(n), cookie).await?.is_empty(),
                    "a session logged in before revoke_all began survived it"
                );
            }
        }
        op(
            "clean up",
            self.layer().user_sessions().revoke_all(&user).await,
        )?;
        ensure!(
            self.stored_entries(&user).await?.is_empty(),
            "revoke_all left index entries"
        );
        Ok(())
    }
}
