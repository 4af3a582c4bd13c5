//! The memory store against session-core's conformance suite.
#![cfg(feature = "memory")]

use session_stores::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_conformance_suite() {
    let store = MemoryStore::default();
    session_core::test_suite::run(|| {
        let store = store.clone();
        async move { store }
    })
    .await
    .assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_updates_all_land() {
    // Three layers sharing one in-process store, as three handlers of one
    // instance would; the last-writer-wins counter-proof runs too.
    let store = MemoryStore::default();
    let kept = session_core::test_suite::assert_no_lost_updates(
        || {
            let store = store.clone();
            async move { store }
        },
        200,
        session_core::SessionLayer::new,
    )
    .await;
    eprintln!("last-writer-wins kept {kept} of 200");
}

fn record(expires_in: time::Duration) -> session_core::store::Record {
    use session_core::store::{Data, Record, now};
    let mut data = Data::new();
    data.insert("k".into(), serde_json::json!("v").into());
    Record::new(
        session_core::Id::random(),
        data,
        now(),
        Some(now() + expires_in),
    )
}

#[tokio::test]
async fn a_full_store_stays_near_its_bound_and_keeps_the_newest() {
    use session_core::SessionStore as _;
    let store = MemoryStore::builder().with_max_sessions(100).build();
    let mut newest = None;
    for n in 0..1_000 {
        let mut r = record(time::Duration::minutes(10 + n));
        store.create(&mut r).await.unwrap();
        assert!(store.len() <= 100 + 31, "{} sessions held", store.len());
        newest = Some(r);
    }
    let newest = newest.unwrap();
    let loaded = store.load(&newest.id).await.unwrap().unwrap();
    assert_eq!(loaded, newest);
}

#[tokio::test]
async fn an_expired_session_is_absent_and_cannot_be_saved_or_touched() {
    use session_core::SessionStore as _;
    let store = MemoryStore::default();
    let mut r = record(time::Duration::milliseconds(30));
    store.create(&mut r).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    assert!(store.load(&r.id).await.unwrap().is_none());
    let mut next = r.clone();
    next.version += 1;
    assert!(!store.save(&next, r.version).await.unwrap());
    assert!(!store.touch(&r.id, None).await.unwrap());
    // Its ID is free again.
    let mut again = r.clone();
    store.create(&mut again).await.unwrap();
    assert_eq!(again.id, r.id);
}
