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
