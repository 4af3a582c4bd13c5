//! The per-request database handle.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::pool::PoolConnection;
use sqlx::{Pool, Transaction};

use crate::backend::RoutedDatabase;
use crate::error::Result;
use crate::fallback::FallbackReason;
use crate::router::{DbRouter, Role};
use crate::source::ReadSource;
use crate::token::CausalToken;

/// The database, as one request sees it.
///
/// [`RouterLayer`](super::RouterLayer) puts one in the request extensions;
/// take it with `request.extensions().get::<DbHandle<DB>>()` or, with the
/// `axum` feature, as an extractor. Cloning is cheap (an `Arc`).
///
/// * [`reader`](Self::reader) gives a read-only connection: from a replica
///   in a read request (`GET`, `HEAD`, `OPTIONS`) unless the user's causal
///   token says the replicas are behind, from the primary otherwise.
/// * [`write_pool`](Self::write_pool) and [`begin`](Self::begin) give the
///   primary and mark the request as a write: after the handler, the layer
///   records the primary's position in a new token for the user's next
///   requests. [`mark_written`](Self::mark_written) marks it without
///   touching the database.
/// * [`record_write_token`](Self::record_write_token) records the token
///   right away, instead of after the handler, and returns it.
pub struct DbHandle<DB: RoutedDatabase> {
    inner: Arc<HandleInner<DB>>,
}

struct HandleInner<DB: RoutedDatabase> {
    router: DbRouter<DB>,
    role: Role,
    incoming: Option<CausalToken>,
    token_unavailable: bool,
    state: Mutex<HandleState>,
}

#[derive(Default)]
struct HandleState {
    /// The primary was handed out since the last recorded token.
    dirty: bool,
    /// A token recorded during this request.
    recorded: Option<CausalToken>,
}

impl<DB: RoutedDatabase> Clone for DbHandle<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<DB: RoutedDatabase> fmt::Debug for DbHandle<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbHandle")
            .field("role", &self.inner.role)
            .field("incoming", &self.inner.incoming)
            .field("token_unavailable", &self.inner.token_unavailable)
            .finish_non_exhaustive()
    }
}

impl<DB: RoutedDatabase> DbHandle<DB> {
    /// A handle outside the layer, for background jobs and tests: `role`
    /// decides where [`reader`](Self::reader) goes, `token` is the causal
    /// token the work must observe.
    pub fn new(router: DbRouter<DB>, role: Role, token: Option<CausalToken>) -> Self {
        Self::build(router, role, token, false)
    }

    pub(crate) fn build(
        router: DbRouter<DB>,
        role: Role,
        incoming: Option<CausalToken>,
        token_unavailable: bool,
    ) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                router,
                role,
                incoming,
                token_unavailable,
                state: Mutex::new(HandleState::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, HandleState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The role picked for this request.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The router behind this handle.
    pub fn router(&self) -> &DbRouter<DB> {
        &self.inner.router
    }

    /// The newest causal token known: recorded during this request, else
    /// the one the request came with.
    pub fn token(&self) -> Option<CausalToken> {
        self.state()
            .recorded
            .clone()
            .or_else(|| self.inner.incoming.clone())
    }

    /// Why reads of this request must use the primary, if they must.
    fn primary_only(&self) -> Option<Option<FallbackReason>> {
        if self.inner.role == Role::Write {
            return Some(None);
        }
        if self.state().dirty {
            return Some(Some(FallbackReason::RecentWrite));
        }
        if self.inner.token_unavailable {
            return Some(Some(FallbackReason::TokenUnavailable));
        }
        None
    }

    /// A read-only connection for this request (see the type docs for where
    /// it comes from).
    ///
    /// # Errors
    ///
    /// As [`DbRouter::reader`].
    pub async fn reader(&self) -> Result<PoolConnection<DB>> {
        if let Some(reason) = self.primary_only() {
            return self.inner.router.primary_reader(reason).await;
        }
        let token = self.token();
        self.inner.router.reader_with(token.as_ref()).await
    }

    /// Like [`reader`](Self::reader), and also which server the connection
    /// comes from; see [`DbRouter::reader_with_source`].
    ///
    /// # Errors
    ///
    /// As [`DbRouter::reader`].
    pub async fn reader_with_source(&self) -> Result<(PoolConnection<DB>, ReadSource)> {
        if let Some(reason) = self.primary_only() {
            let conn = self.inner.router.primary_reader(reason).await?;
            return Ok((conn, ReadSource::Primary));
        }
        let token = self.token();
        self.inner.router.reader_with_source(token.as_ref()).await
    }

    /// The read-only pool this request's reads should use; see
    /// [`DbRouter::read_pool`].
    ///
    /// # Errors
    ///
    /// As [`DbRouter::reader`].
    pub async fn read_pool(&self) -> Result<&Pool<DB>> {
        if let Some(reason) = self.primary_only() {
            return Ok(self.inner.router.primary_read_route(reason));
        }
        let token = self.token();
        self.inner.router.read_pool(token.as_ref()).await
    }

    /// The primary pool, for a write. Marks the request as a write and
    /// counts one in [`Stats::writes`](crate::Stats::writes), as
    /// [`DbRouter::write_pool`] does.
    pub fn write_pool(&self) -> &Pool<DB> {
        self.mark_written();
        self.inner.router.write_pool()
    }

    /// A transaction on the primary. Marks the request as a write and
    /// counts one in [`Stats::writes`](crate::Stats::writes).
    ///
    /// # Errors
    ///
    /// As [`DbRouter::begin`].
    pub async fn begin(&self) -> Result<Transaction<'static, DB>> {
        self.mark_written();
        self.inner.router.begin().await
    }

    /// Marks the request as a write without touching the database: the layer
    /// records the primary's position once the handler has finished. To
    /// record it now, use [`record_write_token`](Self::record_write_token).
    pub fn mark_written(&self) {
        self.state().dirty = true;
    }

    /// Records the primary's position now, after a committed write, instead
    /// of after the handler, and returns the token (which the layer also
    /// hands to the carrier). Reads later in this request may then use a
    /// replica that has replayed the write.
    ///
    /// # Errors
    ///
    /// As [`DbRouter::write_token`]; the request stays marked as a write.
    pub async fn record_write_token(&self) -> Result<CausalToken> {
        self.mark_written();
        let token = self.inner.router.write_token().await?;
        let mut state = self.state();
        state.recorded = Some(token.clone());
        state.dirty = false;
        Ok(token)
    }

    /// Called by the layer after the handler: the token to hand to the
    /// carrier, if this request produced one.
    pub(crate) async fn finish(&self) -> Option<CausalToken> {
        if self.state().dirty {
            let token = match self.inner.router.write_token_after_request().await {
                Ok(token) => token,
                Err(error) => {
                    // Without a position the time window still protects the
                    // user's next reads.
                    tracing::warn!(%error, "could not read the primary's position after a write");
                    CausalToken::new(None)
                }
            };
            let mut state = self.state();
            state.recorded = Some(token);
            state.dirty = false;
        }
        self.state().recorded.clone()
    }
}
