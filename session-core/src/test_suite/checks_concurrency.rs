//! Checks of concurrent requests of one session over three store
//! instances: changes to different keys merge, updates never lose each
//! other.

use std::sync::Arc;

use http::StatusCode;
use tokio::sync::Barrier;

use super::app::{inserting, send_concurrently};
use super::cart::cart_updates_through;
use super::{Check, Ctx, TestApp, cookie_id, op};
use crate::SessionLayer;

impl Ctx {
    pub(super) async fn different_keys_merge(&self) -> Check {
        // 20 requests of one session, on three instances, each loads the
        // session, waits for all the others to have loaded it too, then sets
        // its own key. Every key must be there at the end.
        const N: usize = 20;
        let barrier = Arc::new(Barrier::new(N));
        let apps: Vec<TestApp> = (0..3)
            .map(|i| {
                let barrier = barrier.clone();
                self.app(SessionLayer::new(self.stores[i].clone()), move |s, i| {
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
        let cookie = inserting(self.front_end, self.layer(), "n", 0)
            .start_session()
            .await?;
        for res in send_concurrently(&apps, &cookie, N).await? {
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

    pub(super) async fn concurrent_updates_all_land(&self) -> Check {
        const N: usize = 50;
        let layers: Vec<SessionLayer> = self
            .stores
            .iter()
            .map(|s| SessionLayer::new(s.clone()))
            .collect();
        let outcome = cart_updates_through(self.front_end, &layers, N).await?;
        ensure!(
            outcome.items == N && outcome.distinct == N,
            "{N} concurrent updates over 3 instances left {} items ({} distinct): lost updates",
            outcome.items,
            outcome.distinct
        );
        Ok(())
    }

    pub(super) async fn shared_values_see_other_instances_writes(&self) -> Check {
        // Instance A reads with `get_shared` (a hit the second time),
        // instance B writes, and A's next read must show B's value: a
        // kept value is never used once the stored bytes changed.
        let reader = self.app(
            SessionLayer::new(self.stores[0].clone()),
            |s, _| async move {
                let v = s.get_shared::<Vec<u32>>("v").await?;
                Ok(format!("{:?}", v.as_deref().map_or(&[][..], Vec::as_slice)))
            },
        );
        let cookie = inserting(self.front_end, self.layer(), "v", vec![1u32])
            .start_session()
            .await?;
        for _ in 0..2 {
            let res = reader.send(Some(&cookie)).await;
            ensure!(
                res.status == StatusCode::OK && res.body == "[1]",
                "instance A read {} {:?}, expected [1]",
                res.status,
                res.body
            );
        }
        let writer = inserting(
            self.front_end,
            SessionLayer::new(self.stores[1].clone()),
            "v",
            vec![1u32, 2],
        );
        let res = writer.send(Some(&cookie)).await;
        ensure!(
            res.status == StatusCode::OK,
            "instance B's write failed: {}",
            res.status
        );
        let cookie = res.cookie.unwrap_or(cookie);
        let res = reader.send(Some(&cookie)).await;
        ensure!(
            res.body == "[1, 2]",
            "instance A read {:?} after instance B wrote [1, 2]: a stale shared value",
            res.body
        );
        Ok(())
    }
}
