//! `Probe`: a store wrapper that counts calls and injects faults.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::store::{DecodeError, Record, UserIndex};
use crate::{Error, Id, Result, SessionStore};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Normal = 0,
    Fail = 1,
    Hang = 2,
    /// Loads fail as a damaged record would; everything else works.
    Undecodable = 3,
}

#[derive(Clone)]
pub(super) struct Probe {
    inner: Arc<dyn SessionStore>,
    counts: Arc<[AtomicUsize; 5]>,
    mode: Arc<AtomicU8>,
}

const CREATE: usize = 0;
const LOAD: usize = 1;
const SAVE: usize = 2;
const DELETE: usize = 3;
const TOUCH: usize = 4;

impl Probe {
    pub(super) fn new(inner: Arc<dyn SessionStore>) -> Self {
        Probe {
            inner,
            counts: Arc::new(Default::default()),
            mode: Arc::new(AtomicU8::new(Mode::Normal as u8)),
        }
    }

    pub(super) fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::SeqCst);
        }
    }

    fn count(&self, i: usize) -> usize {
        self.counts[i].load(Ordering::SeqCst)
    }

    pub(super) fn total(&self) -> usize {
        (0..5).map(|i| self.count(i)).sum()
    }

    pub(super) fn loads(&self) -> usize {
        self.count(LOAD)
    }

    pub(super) fn saves(&self) -> usize {
        self.count(SAVE)
    }

    pub(super) fn touches(&self) -> usize {
        self.count(TOUCH)
    }

    pub(super) fn writes(&self) -> usize {
        self.count(CREATE) + self.count(SAVE) + self.count(DELETE) + self.count(TOUCH)
    }

    pub(super) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    async fn enter(&self, op: usize) -> Result<()> {
        self.counts[op].fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            1 => Err(Error::backend("injected failure: store down")),
            2 => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "create={} load={} save={} delete={} touch={}",
            self.count(CREATE),
            self.count(LOAD),
            self.count(SAVE),
            self.count(DELETE),
            self.count(TOUCH)
        )
    }
}

#[async_trait]
impl SessionStore for Probe {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.enter(CREATE).await?;
        self.inner.create(record).await
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.enter(LOAD).await?;
        if self.mode.load(Ordering::SeqCst) == Mode::Undecodable as u8 {
            return Err(DecodeError::Malformed("injected: a damaged record".into()).into());
        }
        self.inner.load(id).await
    }
    async fn save(&self, record: &Record, expected_version: u64) -> Result<bool> {
        self.enter(SAVE).await?;
        self.inner.save(record, expected_version).await
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        self.enter(DELETE).await?;
        self.inner.delete(id).await
    }
    async fn touch(&self, id: &Id, expires_at: Option<OffsetDateTime>) -> Result<bool> {
        self.enter(TOUCH).await?;
        self.inner.touch(id, expires_at).await
    }
    fn supports_user_index(&self) -> bool {
        self.inner.supports_user_index()
    }
    async fn load_user_index(&self, user: &str) -> Result<Option<UserIndex>> {
        self.inner.load_user_index(user).await
    }
    async fn save_user_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        self.inner
            .save_user_index(user, index, expected_version)
            .await
    }
    async fn delete_user_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        self.inner.delete_user_index(user, expected_version).await
    }
}
