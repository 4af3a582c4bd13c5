//! `LastWriterWins`: a deliberately broken store wrapper that shows the
//! concurrency checks can fail.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::store::Record;
use crate::{Id, Result, SessionStore};

/// A deliberately broken wrapper: its `save` ignores the expected version
/// (it reads the current one and saves against that), as a plain `SET` or
/// `PutItem` would. Tests run their concurrency checks on it to show that
/// they catch lost updates.
#[derive(Debug, Clone)]
pub struct LastWriterWins<S>(pub S);

#[async_trait]
impl<S: SessionStore> SessionStore for LastWriterWins<S> {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.0.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn save(&self, record: &Record, _expected_version: u64) -> Result<bool> {
        let Some(current) = self.0.load(&record.id).await? else {
            return Ok(false);
        };
        self.0.save(record, current.version).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.0.touch(id, expires_at).await
    }
}
