//! `MissingSessionLayer`: what the `Session` extractors answer when no
//! session layer ran before them (features `axum` and `actix`).

/// Rejection of the [`Session`](crate::Session) extractor: the request has
/// no session, so the handler's route is not behind a
/// [`SessionLayer`](crate::SessionLayer) (a Tower layer in axum, a
/// `wrap`ped middleware in actix-web).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no session in the request extensions: is `SessionLayer` installed on this route?")]
#[non_exhaustive]
pub struct MissingSessionLayer;
