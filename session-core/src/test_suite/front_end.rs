//! `FrontEnd`: which web framework the HTTP-level checks go through.

/// The front end that a [`TestApp`](super::TestApp), and so the HTTP-level
/// checks of [`run_through`](super::run_through), send requests through.
/// The session logic is the same; this checks that each front end hands it
/// the cookies and applies its answer faithfully.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrontEnd {
    /// The Tower layer ([`SessionLayer`](crate::SessionLayer) as a
    /// `tower::Layer`), as axum apps use it.
    #[default]
    Tower,
    /// The actix-web middleware ([`SessionLayer`](crate::SessionLayer) as
    /// a `Transform`) and the `Session` extractor (feature `actix`).
    #[cfg(feature = "actix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    Actix,
}
