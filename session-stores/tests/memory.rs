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
