//! The conformance suite must catch stores that lose updates: run it on
//! deliberately broken stores and check that the right checks fail, then on
//! the memory store through a real axum app, where everything must pass.

use std::sync::Arc;

use async_trait::async_trait;
use session_core::store::{Record, UserIndex};
use session_core::test_suite::{self, LastWriterWins};
use session_core::{Id, Result, SessionStore};
use session_stores::MemoryStore;
use time::OffsetDateTime;

/// Overwrites on create instead of inserting.
#[derive(Debug, Clone)]
struct OverwritingCreate(MemoryStore);

#[async_trait]
impl SessionStore for OverwritingCreate {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.0.delete(&record.id).await?;
        self.0.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn save(&self, record: &Record, expected: u64) -> Result<bool> {
        self.0.save(record, expected).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.0.touch(id, expires_at).await
    }
}

/// Keeps users' session indexes, but saves them whatever the stored
/// version (last writer wins).
#[derive(Debug, Clone)]
struct UnversionedIndex(MemoryStore);

#[async_trait]
impl SessionStore for UnversionedIndex {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.0.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn save(&self, record: &Record, expected: u64) -> Result<bool> {
        self.0.save(record, expected).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.0.touch(id, expires_at).await
    }
    fn supports_user_index(&self) -> bool {
        true
    }
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        self.0.load_user_index(user).await
    }
    async fn save_user_index(&self, user: &str, index: &UserIndex, _: Option<u64>) -> Result<bool> {
        let current = self.0.load_user_index(user).await?.map(|i| i.version);
        self.0.save_user_index(user, index, current).await
    }
    async fn delete_user_index(&self, user: &str, expected: u64) -> Result<bool> {
        self.0.delete_user_index(user, expected).await
    }
}

async fn run_on<S: SessionStore + Clone>(store: S) -> test_suite::Report {
    test_suite::run(|| {
        let store = store.clone();
        async move { store }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_fails_a_store_whose_save_ignores_versions() {
    let report = run_on(LastWriterWins(MemoryStore::default())).await;
    for check in [
        "save_is_compare_and_set",
        "concurrent_updates_all_land",
        "different_keys_merge",
    ] {
        assert!(
            report.has_failed(check),
            "{check} passed on a last-writer-wins store: {report:#?}"
        );
    }
    // The checks that do not involve concurrency still pass, so the
    // failures above are about versions, not a broken harness.
    assert!(report.passed.contains(&"create_load_round_trip"));
    assert!(
        report
            .passed
            .contains(&"cycle_id_keeps_data_retires_old_id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_fails_a_store_whose_create_overwrites() {
    let report = run_on(OverwritingCreate(MemoryStore::default())).await;
    assert!(report.has_failed("create_never_overwrites"), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_fails_a_store_whose_user_index_ignores_versions() {
    let report = run_on(UnversionedIndex(MemoryStore::default())).await;
    assert!(report.has_failed("user_index_primitives"), "{report:#?}");
    // Sessions are listed and revoked all the same without concurrency.
    assert!(
        report.passed.contains(&"revoke_one_others_and_all"),
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_every_check() {
    let report = run_on(Arc::new(MemoryStore::default())).await;
    report.assert_passed();
    assert_eq!(report.passed.len(), test_suite::CHECKS.len());
}
