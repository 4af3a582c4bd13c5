//! Checks of the store's own operations, called directly: round trip,
//! compare-and-set, insert-only create, expiry, touch, delete, large values.

use std::time::Duration;

use serde_json::json;

use super::{Check, Ctx, HOUR, data, op, record};
use crate::store::{Data, now};
use crate::{Error, Id};

impl Ctx {
    pub(super) async fn create_load_round_trip(&self) -> Check {
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

    pub(super) async fn load_missing(&self) -> Check {
        let loaded = op("load", self.store().load(&Id::random()).await)?;
        ensure!(loaded.is_none(), "a random ID loaded {loaded:?}");
        Ok(())
    }

    pub(super) async fn save_is_compare_and_set(&self) -> Check {
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

    pub(super) async fn create_never_overwrites(&self) -> Check {
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

    pub(super) async fn expired_records_are_not_loaded(&self) -> Check {
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

    pub(super) async fn touch_extends_expiry_only(&self) -> Check {
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

    pub(super) async fn delete(&self) -> Check {
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

    pub(super) async fn large_value(&self) -> Check {
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
}
